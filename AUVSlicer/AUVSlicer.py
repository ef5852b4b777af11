"""AUV Slicer: aleatoric uncertainty of volumes and annotations from a frozen foundation model.

This file holds the module's description, its parameter node, the wiring of
the panel and the self-test; the work is in ``AUVSlicerLib`` (one job per file)
and in the ``auvcore`` package, which runs as a background process. What is
imported here at load time (AUVSlicerLib.logic included) runs on any Slicer's
Python, so an unsupported release gets a clear message rather than a traceback.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import sys
import tempfile
from typing import Annotated, Union

import qt
import slicer
import vtk
from AUVSlicerLib.job_commands import BUNDLED, NNUNET, NNUNET_CONFIGURATIONS, NNUNET_FOLDS, NNUNET_TRAINERS
from AUVSlicerLib.logic import AUVLogic
from slicer import (
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
)
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: The oldest Slicer release the module runs on: its Python 3.12 (auvcore needs Python 3.10 or later).
MINIMUM_SLICER = "5.10"
MINIMUM_PYTHON = (3, 10)
#: The scores a structure can be coloured and queued by (``auvcore.scorers.SCORERS``).
SCORE_CHOICES = ["auv", "agreement", "fisher", "variance", "boundary_gradient", "boundary_logits", "boundary_distance",
                 "contrast", "homogeneity", "consistency", "image_auv", "stray_voxels", "edge_offset", "probe_agreement",
                 "size_offset", "shift", "missed_slices", "prototype", "mahalanobis", "identity", "label_check", "cleanlab"]
#: ``str`` parameters shown in path fields (kept in step by the panel: see AUVSlicerLib.panel).
PATH_PARAMETERS = ("checkpointPath", "referencePath", "resultsFolder", "datasetPath", "scoreOutputFolder",
                   "trainOutputFolder")


def unsupportedReason(pythonVersion=sys.version_info) -> str | None:
    """Why this Slicer cannot run the module, or None when it can."""
    if tuple(pythonVersion[:2]) >= MINIMUM_PYTHON:
        return None
    return (f"AUV Slicer needs Slicer {MINIMUM_SLICER} or later (Python {'.'.join(map(str, MINIMUM_PYTHON))}+); "
            f"this Slicer runs Python {pythonVersion[0]}.{pythonVersion[1]}. Install a newer Slicer to use it.")


class AUVSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("AUV Slicer")
        self.parent.categories = [_("Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["AUV Slicer contributors"]
        self.parent.helpText = _(
            "Scores how uncertain a volume and each annotated structure are with a frozen medical foundation model "
            "(LiteMedSAM embedded, MedSAM2 with your checkpoint), colours each structure by how unusual its score is "
            "for that structure in a reference cohort, and turns a scored cohort into a review queue with verdicts: "
            "Fix (F) opens a suspect structure in the Segment Editor at its worst slice, Save correction (S) writes "
            "the corrected label beside the results (the source label is never written) and Ctrl+B returns to the "
            "queue; for cases scored with the probe (--scorers all), Proposal (D) shows where the label and the model "
            "disagree, and the model's outline can be accepted or edited as the correction. "
            "Needs Slicer {minimum} or later and the PyTorch extension. "
            "See the <a href=\"https://github.com/auv-slicer/SlicerAUV#readme\">documentation</a>.").format(
            minimum=MINIMUM_SLICER)
        self.parent.acknowledgementText = _(
            "Method: \"Delving Aleatoric Uncertainty in Medical Image Segmentation via Vision Foundation Models\" "
            "(CVPR 2026). Sample data: TotalSegmentator reference files.")
        reason = unsupportedReason()
        if reason:
            logging.getLogger(__name__).error(reason)
            self.parent.helpText = reason


@parameterNodeWrapper
class AUVSlicerParameterNode:
    """Everything the panels show, so a saved scene remembers it (job settings included)."""

    inputVolume: vtkMRMLScalarVolumeNode
    # typing.Union, with None: the wrapper writes None as the default of a node parameter.
    inputSegmentation: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]  # noqa: UP007
    referencePath: str = ""
    colorScore: Annotated[str, Choice(SCORE_CHOICES)] = "auv"
    colormap: Annotated[str, Choice(["viridis", "inferno"])] = "viridis"
    colorRange: Annotated[str, Choice(["case", "full"])] = "case"
    showUncertainty: bool = True
    backbone: Annotated[str, Choice(["litemedsam", "medsam2"])] = "litemedsam"
    checkpointPath: str = ""
    scoringMode: Annotated[str, Choice(["classwise", "image"])] = "classwise"
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    runtime: Annotated[str, Choice(["auto", "torch", "openvino", "onnxruntime"])] = "auto"
    resultsFolder: str = ""
    keepFraction: Annotated[float, WithinRange(0.5, 1.0)] = 0.95
    datasetPath: str = ""
    scoreOutputFolder: str = ""
    trainOutputFolder: str = ""
    trainBackbone: Annotated[str, Choice(["dynunet", "swinunetr"])] = "dynunet"
    duo: bool = True
    epochs: Annotated[int, WithinRange(1, 10000)] = 1000  # TrainConfig.epochs (a test keeps them equal)
    trainOnRetained: bool = True
    # The training panel's trainer (AUVSlicerLib.job_commands: bundled, or nnU-Net's nnUNetv2_train) and nnU-Net's settings.
    trainEngine: Annotated[str, Choice([BUNDLED, NNUNET])] = BUNDLED
    nnunetDataset: Annotated[int, WithinRange(1, 999)] = 1
    nnunetConfiguration: Annotated[str, Choice(list(NNUNET_CONFIGURATIONS))] = NNUNET_CONFIGURATIONS[0]
    nnunetFold: Annotated[str, Choice(list(NNUNET_FOLDS))] = NNUNET_FOLDS[0]
    nnunetTrainer: Annotated[str, Choice(list(NNUNET_TRAINERS))] = NNUNET_TRAINERS[0]


class AUVSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Loads the .ui and hands it to the panel (AUVSlicerLib.panel), which does the work."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = self.panel = self._parameterNode = self._guiTag = self.backToReviewButton = None
        self.shortcuts, self.fixShortcuts = [], []

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        reason = unsupportedReason()
        if reason:
            self.layout.addWidget(qt.QLabel(reason))
            return
        from AUVSlicerLib.cohort_table import fill_table_widget
        from AUVSlicerLib.dialogs import SlicerDialogs
        from AUVSlicerLib.panel import AUVSlicerPanel
        from AUVSlicerLib.qt_job import QtProcessJob
        from AUVSlicerLib.review_panel import FIX_SHORTCUTS

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AUVSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AUVSlicerLogic()
        self.panel = AUVSlicerPanel(self.ui, self.logic, QtProcessJob.started, SlicerDialogs(), fill_table_widget,
                                    slicer.app.temporaryPath)
        self.panel.connect()
        for key, action in self.panel.shortcuts().items():
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())
            shortcut.connect("activated()", action)
            shortcut.setEnabled(False)  # only while the module is shown or a fix is under way: updateShortcuts()
            self.shortcuts.append(shortcut)
            if key in FIX_SHORTCUTS:
                self.fixShortcuts.append(shortcut)
        # While a fix is under way this panel is out of sight (the Segment Editor's is shown): the status bar is not.
        self.backToReviewButton = qt.QPushButton(_("Back to review (Ctrl+B)"))
        self.backToReviewButton.toolTip = _("End the fix and return to the AUV Slicer review queue where it was. "
                                            "S saves the correction.")
        self.backToReviewButton.connect("clicked(bool)", self.panel.review.onBackToReview)
        self.backToReviewButton.visible = False
        slicer.util.mainWindow().statusBar().addPermanentWidget(self.backToReviewButton)
        self.panel.review.fixChanged = self.onFixChanged
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self.panel.showDependencyStatus()

    def cleanup(self) -> None:
        self.removeObservers()
        # Application shortcuts outlive the widget: left behind, a reloaded module's keys become ambiguous.
        for shortcut in self.shortcuts:
            shortcut.disconnect("activated()")
            shortcut.setParent(None)
            shortcut.deleteLater()
        self.shortcuts, self.fixShortcuts = [], []
        if self.backToReviewButton is not None:
            slicer.util.mainWindow().statusBar().removeWidget(self.backToReviewButton)
            self.backToReviewButton.setParent(None)
            self.backToReviewButton.deleteLater()
            self.backToReviewButton = None
        if self.panel:
            self.panel.cleanup()

    def enter(self) -> None:
        if self.panel:
            self.updateShortcuts()
            self.initializeParameterNode()

    def exit(self) -> None:
        self.updateShortcuts()
        if self.panel:  # none on an unsupported Slicer (see setup)
            self.setParameterNode(None)

    def updateShortcuts(self) -> None:
        """The keys work while the module is shown; Save correction and Back to review also while a fix is under way."""
        fixing = bool(self.panel and self.panel.review.fixing)
        for shortcut in self.shortcuts:
            shortcut.setEnabled(self.parent.isEntered or (fixing and shortcut in self.fixShortcuts))

    def onFixChanged(self, fixing: bool) -> None:
        self.backToReviewButton.visible = fixing
        self.updateShortcuts()

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if not self._parameterNode.inputSegmentation:
            self._parameterNode.inputSegmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")

    def setParameterNode(self, parameterNode: AUVSlicerParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._guiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.panel.updateFromParameterNode)
        self._parameterNode = parameterNode
        if parameterNode:
            self._guiTag = parameterNode.connectGui(self.ui)
            self.addObserver(parameterNode, vtk.vtkCommand.ModifiedEvent, self.panel.updateFromParameterNode)
        # Last: showing the node opens its results folder, whose error dialog raises again after showing.
        self.panel.setParameterNode(parameterNode)


class AUVSlicerLogic(ScriptedLoadableModuleLogic, AUVLogic):
    """The scene work of AUVSlicerLib.logic, with this module's typed parameter node."""

    def getParameterNode(self) -> AUVSlicerParameterNode:
        return AUVSlicerParameterNode(super().getParameterNode())


class AUVSlicerTest(ScriptedLoadableModuleTest):
    """The self-test that Slicer's extension dashboard runs (``slicer_add_python_unittest`` runs every ``test*``
    method; runTest is only "Reload and Test"). On a clean build machine, without network, PyTorch or AUVCore:
    the widget comes up, its parameter node holds the defaults, and the panel offers to install what is missing.
    Where AUVCore is installed, a precomputed cohort of the sample CT is also coloured, tabled and reviewed
    (seconds). ``test_FullScoring`` scores it anew (minutes, needs the core; set AUVSLICER_TEST_SCORING=1),
    as SlicerTotalSegmentator keeps logic testing off the build machines."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ModuleOnACleanSlicer()
        if self._coreInstalled():
            self.setUp()
            self.test_ReviewPrecomputedCohort()

    @staticmethod
    def _coreInstalled() -> bool:
        from AUVSlicerLib.dependencies import check_dependencies

        return check_dependencies().ready

    def _cohortCopy(self) -> pathlib.Path:
        work = pathlib.Path(tempfile.mkdtemp(prefix="auv-selftest-", dir=slicer.app.temporaryPath))
        source = pathlib.Path(__file__).parent / "Resources" / "SelfTest"
        shutil.copytree(source, work / "cohort")
        return work / "cohort"

    def test_ModuleOnACleanSlicer(self):
        from AUVSlicerLib.dependencies import check_dependencies

        self.delayDisplay("Building the widget and its parameter node")
        slicer.util.selectModule("AUVSlicer")
        widget = slicer.modules.AUVSlicerWidget
        node = widget.logic.getParameterNode()
        self.assertEqual(node.colorScore, "auv")
        self.assertEqual(node.resultsFolder, "")

        self.delayDisplay("The panel says what is missing and offers to install it")
        status = check_dependencies()
        self.assertEqual(widget.ui.dependencyStatusLabel.text, status.describe())
        self.assertEqual(widget.ui.installDependenciesButton.visible, not status.ready)
        self.assertEqual(len(widget.shortcuts), len(widget.panel.shortcuts()))
        self.delayDisplay("Test passed")

    def test_ReviewPrecomputedCohort(self):
        if not self._coreInstalled():
            self.skipTest("AUVCore is not installed (a clean build machine): nothing to review with")
        from auvcore.results import load_review

        self.delayDisplay("Opening the precomputed cohort: table, colours against the cohort, review queue")
        slicer.util.selectModule("AUVSlicer")
        widget = slicer.modules.AUVSlicerWidget
        node = widget.logic.getParameterNode()
        folder = self._cohortCopy()
        node.resultsFolder = str(folder)
        self.assertIsNotNone(widget.panel.cohort)
        self.assertEqual(widget.ui.cohortTableWidget.rowCount, 3)
        node.colorScore = "agreement"
        widget.panel.review.onStartReview()
        queue = widget.panel.review.queue
        self.assertEqual((queue.current.case_id, queue.current.structure), ("ct_shifted", "liver"))
        self.assertEqual(widget.ui.reviewQueueTableWidget.rowCount, len(queue.entries))

        self.delayDisplay("Fix: the structure's segment in the Segment Editor, then back to the queue where it was")
        widget.panel.review.onFixStructure()
        editorNode = slicer.mrmlScene.GetSingletonNode("SegmentEditor", "vtkMRMLSegmentEditorNode")
        self.assertEqual(slicer.util.selectedModule(), "SegmentEditor")
        self.assertEqual(editorNode.GetSegmentationNode(), node.inputSegmentation)
        self.assertEqual(editorNode.GetSourceVolumeNode(), node.inputVolume)
        selected = node.inputSegmentation.GetSegmentation().GetSegment(editorNode.GetSelectedSegmentID())
        self.assertEqual(selected.GetName(), "liver")
        widget.panel.review.onBackToReview()
        self.assertEqual(slicer.util.selectedModule(), "AUVSlicer")
        self.assertEqual((queue.position, widget.panel.review.fixing), (0, False))

        self.delayDisplay("Verdicts with the keyboard's actions")
        widget.panel.review.onVerdictNeedsFix()
        widget.panel.review.onVerdictCorrect()
        self.assertEqual(load_review(folder / "review.json").counts(), {"correct": 1, "needs_fix": 1, "unsure": 0, "fixed": 0})
        self.assertIn("reviewed 2 of", widget.ui.reviewProgressLabel.text)
        self.delayDisplay("Test passed")

    def test_FullScoring(self):
        """Opt-in (AUVSLICER_TEST_SCORING=1; minutes, installs PyTorch and AUVCore if needed): score the cases anew."""
        if os.environ.get("AUVSLICER_TEST_SCORING") != "1":
            self.skipTest("scores on the CPU for minutes and may download PyTorch: set AUVSLICER_TEST_SCORING=1")
        from AUVSlicerLib.job_commands import ScoreJob, score_command
        from AUVSlicerLib.job_runner import SubprocessJob

        logic = AUVSlicerLogic()
        self.assertTrue(logic.installDependencies(confirm=lambda message: True))
        folder = self._cohortCopy()
        job = SubprocessJob(score_command(logic.pythonExecutable(), ScoreJob(
            dataset=str(folder / "manifest.csv"), output=str(folder.parent / "scores"), device="cpu")))
        job.start()
        self.assertEqual(job.wait(3600), 0, "\n".join(job.monitor.log))
        self.assertEqual(len(logic.openCohort(str(folder.parent / "scores")).case_ids), 3)
