"""The module's logic: everything the panel does to the scene and the files, without Qt.

Imported when the module loads, so only ``slicer`` is imported at the top:
``auvcore`` (and its pandas and numpy) may not be installed yet, and are
imported by the methods that need them.

Example (inside Slicer, or headless with the slicer-core wheel):
    >>> logic = AUVLogic()                                                    # doctest: +SKIP
    >>> cohort = logic.openCohort("/data/out")                                # doctest: +SKIP
    >>> queue = logic.openReview(cohort, "agreement")                         # doctest: +SKIP
    >>> shown = logic.showQueueEntry(cohort, queue.current)                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import slicer

from .dependencies import check_dependencies, install_missing, shipped_auvcore
from .installers import install_torch, pip_install, pip_uninstall

#: Fill opacity of the other structures while one is reviewed.
DIMMED_OPACITY = 0.15


@dataclass
class ShownScores:
    """What showing a case's scores produced: the case, its table and chart nodes, and a summary line."""

    case: object
    table: object
    chart: object
    summary: str


@dataclass(frozen=True)
class ShownStructure:
    """A structure shown for review: the case loaded, the segment, where the views jumped and why."""

    loaded: object
    segment_id: str
    ras: tuple[float, float, float]
    where: str


class AUVLogic:
    """Scoring, colouring, cohort browsing and review on the MRML scene (AUVSlicer.py adds the parameter node)."""

    def __init__(self) -> None:
        super().__init__()
        self.caseLoader = None
        self.caseEdits = None
        self.explainView = None
        self.proposalView = None

    @staticmethod
    def pythonExecutable() -> str:
        """Slicer's own Python (it has auvcore); jobs run it as a separate process."""
        return shutil.which("PythonSlicer") or sys.executable

    @staticmethod
    def installDependencies(confirm) -> bool:
        """Install PyTorch and the bundled AUVCore if missing (or another AUVCore version), after ``confirm(message)``."""
        installed = install_missing(check_dependencies(), confirm, install_torch, pip_install, shipped_auvcore(),
                                    pip_uninstall)
        importlib.invalidate_caches()  # so this process finds the packages that were just installed
        return installed

    @staticmethod
    def exportCase(volumeNode, labelNode, folder):
        from .case_export import export_for_scoring

        return export_for_scoring(slicer.mrmlScene, volumeNode, labelNode, folder)

    @staticmethod
    def segmentationFromLabelmap(labelmapNode):
        from .labelmap_import import segmentation_from_labelmap

        return segmentation_from_labelmap(slicer.mrmlScene, labelmapNode)

    @staticmethod
    def referenceScores(referencePath: str):
        """The scored cases beside a ``reference.json`` (its results folder), for per-structure z; None for ""."""
        if not referencePath:
            return None
        from auvcore.review.case_scores import load_case_result
        from auvcore.review.structure_scores import CohortScores

        folder = Path(referencePath).parent
        cases = [load_case_result(path) for path in sorted((folder / "cases").glob("*.json"))]
        return CohortScores(cases, str(folder))

    def showCaseScores(self, segmentationNode, resultsFolder, caseId: str, referencePath: str = "",
                       colormap: str = "viridis", colorRange: str = "case", score: str = "auv") -> ShownScores:
        """Colour ``segmentationNode`` from a case's scores against the reference cohort, fill its table and chart."""
        from auvcore.review.case_scores import case_result_path, load_case_result

        case = load_case_result(case_result_path(resultsFolder, caseId))
        shown = self.showCaseResult(segmentationNode, case, self.referenceScores(referencePath), colormap, colorRange,
                                    score)
        if referencePath:
            from .reference_cohort import load_reference_cohort

            placement = load_reference_cohort(referencePath).place(case.S, case.backbone, case.mode, case.record.settings)
            shown.summary += " " + placement.describe()
        return shown

    @staticmethod
    def showCaseResult(segmentationNode, case, reference=None, colormap: str = "viridis", colorRange: str = "case",
                       score: str = "auv") -> ShownScores:
        """Colour by ``score``'s z in ``reference`` (a CohortScores; None: the case's own range), fill table and chart."""
        from .results_table import fill_results_table, uncertainty_bar_chart
        from auvcore.review.colour_plan import colour_plan
        from .uncertainty_colors import UncertaintyColoring

        if case.status != "ok":
            raise RuntimeError(f"{case.case_id} was not scored: {case.error}")
        plan = colour_plan(case, score, reference, colorRange)
        matched = UncertaintyColoring(slicer.mrmlScene).apply(segmentationNode, case, colormap, plan.value_range,
                                                              plan.values, plan.title)
        summary = (f"{case.case_id}: S = {case.S:.3f} over {len(case.scored_classes)} classes; "
                   f"{len(matched)} segments coloured by {plan.title}.")
        return ShownScores(case, fill_results_table(slicer.mrmlScene, case),
                           uncertainty_bar_chart(slicer.mrmlScene, case), summary)

    @staticmethod
    def setUncertaintyShown(segmentationNode, shown: bool, colormap: str) -> None:
        """The restore toggle: the score colours, or each segment's own colour back."""
        from .uncertainty_colors import UncertaintyColoring

        coloring = UncertaintyColoring(slicer.mrmlScene)
        if not coloring.has_uncertainty(segmentationNode):
            return
        if shown:
            coloring.show_uncertainty(segmentationNode, colormap)
        else:
            coloring.show_original(segmentationNode)

    @staticmethod
    def showChart(chartNode) -> None:
        """Show the chart in a plot view; the plots logic switches layout only when the user's has no plot view."""
        if not hasattr(slicer, "app"):
            return
        slicer.modules.plots.logic().ShowChartInLayout(chartNode)

    def explainStructure(self, cohort, caseId: str, structure: str):
        """A structure's energy spectrum (a chart) and mask logits (a volume layer), from the case's stored features."""
        from auvcore.results import ResultsFolder

        from .explain_view import ExplainView

        if self.explainView is None:
            self.explainView = ExplainView(slicer.mrmlScene)
        nodes = self.explainView.show(ResultsFolder(Path(cohort.folder)).case_json(caseId), structure)
        self.showChart(nodes.chart)
        if nodes.logits is not None and hasattr(slicer, "app"):
            slicer.util.setSliceViewerLayers(foreground=nodes.logits, foregroundOpacity=0.5)
        return nodes

    @staticmethod
    def openCohort(folder: str):
        from .cohort_model import CohortModel

        return CohortModel(folder)

    def loadCohortCase(self, cohort, caseId: str, colormap: str = "viridis", colorRange: str = "case",
                       score: str = "auv"):
        """Load a cohort case (unloading the previous one), with the label the folder uses for it (its correction
        where it has one), and colour it against the cohort itself."""
        from .case_edits import CaseEdits
        from .case_loader import CaseLoader

        if self.caseLoader is None:
            self.caseLoader = CaseLoader(slicer.mrmlScene)
        self.hideProposal()  # an overlay belongs to the case loaded
        image, _source = cohort.case_files(caseId)
        label = cohort.label_in_use(caseId)  # its saved correction, where it has one
        case = cohort.case_result(caseId)
        names = {c.label_value: c.name for c in case.classes}
        loaded = self.caseLoader.load(image, label.path, names, case_id=caseId)
        self.caseEdits = CaseEdits(slicer.mrmlScene, loaded, label, names)
        if hasattr(slicer, "app"):
            slicer.util.setSliceViewerLayers(background=loaded.volume_node, fit=True)
        shown = None
        if case.status == "ok":
            shown = self.showCaseResult(loaded.segmentation_node, case, self.cohortScores(cohort), colormap,
                                        colorRange, score)
        return loaded, shown

    @staticmethod
    def cohortScores(cohort):
        """The cohort's own scored cases, as the reference its structures are placed in."""
        from auvcore.review.structure_scores import CohortScores

        return CohortScores([cohort.case_result(case_id) for case_id in cohort.case_ids], str(cohort.folder))

    def openReview(self, cohort, score: str = "auv"):
        """The review queue of ``cohort``: every (case, structure) by ``score``, most suspect first."""
        from auvcore.review.queue import ReviewQueue

        return ReviewQueue(cohort.folder, self.cohortScores(cohort), score)

    def showQueueEntry(self, cohort, entry, colormap: str = "viridis", score: str = "auv") -> ShownStructure:
        """Load the entry's case unless it is loaded, highlight its structure and jump the views to its worst slice."""
        loaded = self.caseLoader.current() if self.caseLoader is not None else None
        if loaded is None or loaded.case_id != entry.case_id:
            loaded, _ = self.loadCohortCase(cohort, entry.case_id, colormap, "case", score)
        segmentation = loaded.segmentation_node.GetSegmentation()
        segmentId = segmentation.GetSegmentIdBySegmentName(entry.structure)
        if not segmentId:
            raise ValueError(f"case {entry.case_id} has no segment named {entry.structure!r}")
        highlightSegment(loaded.segmentation_node, segmentId)
        ras, where = worstSliceLocation(cohort.case_result(entry.case_id), entry.structure, score,
                                        loaded.segmentation_node, segmentId)
        # What the markups logic's JumpSlicesToLocation(x, y, z, centered=True) calls (vtkSlicerMarkupsLogic.cxx).
        slicer.vtkMRMLSliceNode.JumpAllSlices(slicer.mrmlScene, *ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return ShownStructure(loaded, segmentId, ras, where)

    # --- the Fix step: the Segment Editor, unsaved edits, corrections ---

    @staticmethod
    def editInSegmentEditor(shown: ShownStructure):
        """Set Slicer's Segment Editor to the shown structure's segment, on its segmentation and volume, and centre
        the views on its worst slice; returns the editor's parameter node (the module is selected by the caller)."""
        from .segment_editor import edit_in_segment_editor

        loaded = shown.loaded
        node = edit_in_segment_editor(slicer.mrmlScene, loaded.segmentation_node, loaded.volume_node, shown.segment_id)
        slicer.vtkMRMLSliceNode.JumpAllSlices(slicer.mrmlScene, *shown.ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return node

    @staticmethod
    def selectModule(name: str) -> None:
        """Show the module ``name`` (Slicer calls the shown module's ``exit()`` and the new one's ``enter()``)."""
        if hasattr(slicer, "app"):  # headless (slicer-core) there is no module panel
            slicer.util.selectModule(name)

    def loadedCaseEdits(self):
        """The loaded cohort case's label and edits (:class:`~AUVSlicerLib.case_edits.CaseEdits`), None without one."""
        loaded = self.caseLoader.current() if self.caseLoader is not None else None
        if loaded is None or self.caseEdits is None or self.caseEdits.case is not loaded:
            return None
        return self.caseEdits

    def hasUnsavedEdits(self) -> bool:
        """Whether the loaded cohort case's segmentation was edited since it was loaded or saved."""
        edits = self.loadedCaseEdits()
        return edits is not None and edits.has_unsaved_edits()

    def saveCorrection(self, cohort, note: str = ""):
        """Save the loaded case's segmentation as its correction in ``cohort``'s folder (verdict ``fixed`` for each
        structure it changes); returns the :class:`auvcore.results.Correction`, None when nothing was edited."""
        from auvcore.results import ResultsFolder

        edits = self.loadedCaseEdits()
        if edits is None or not edits.has_unsaved_edits():
            return None
        return edits.save(ResultsFolder(Path(cohort.folder)), note)

    def discardEdits(self) -> None:
        """Forget the loaded case's edits: the case leaves the scene and is read from its file when shown again."""
        self.hideProposal()
        if self.caseLoader is not None:
            self.caseLoader.unload()
        self.caseEdits = None

    # --- proposals (cases scored with the probe): the disagreement overlay, accepting or editing the model's outline ---

    def showProposal(self, cohort, shown: ShownStructure, structure: str):
        """Show where the label and the model disagree on the shown structure, as an overlay of two segments over
        its case (replacing any other); returns the :class:`~AUVSlicerLib.proposal_view.ProposalOverlay`.

        Raises:
            auvcore.errors.InputError: for a case scored without the probe, saying which command makes one.
        """
        from auvcore.results import ResultsFolder

        from .proposal_view import ProposalView

        if self.proposalView is None:
            self.proposalView = ProposalView(slicer.mrmlScene)
        loaded = shown.loaded
        return self.proposalView.show(ResultsFolder(Path(cohort.folder)), loaded.case_id, structure, loaded.volume_node)

    def hideProposal(self) -> None:
        """Remove the disagreement overlay, if one is shown."""
        if self.proposalView is not None:
            self.proposalView.clear()

    def proposalShown(self, caseId: str, structure: str) -> bool:
        return self.proposalView is not None and self.proposalView.shows(caseId, structure)

    def acceptProposal(self, cohort, caseId: str, structure: str, note: str = ""):
        """Save the structure's proposal as the case's correction, marked as an accepted proposal (verdict ``fixed``:
        :func:`auvcore.results.proposals.accept_proposal`); the loaded case then leaves the scene, to be loaded
        again with its new label. Returns the :class:`auvcore.results.Correction`."""
        from auvcore.results import ResultsFolder
        from auvcore.results.proposals import accept_proposal

        saved = accept_proposal(ResultsFolder(Path(cohort.folder)), caseId, [structure], note=note)
        self.discardEdits()
        return saved

    @staticmethod
    def editProposal(cohort, shown: ShownStructure, structure: str):
        """Put the structure's proposal into its segment of the loaded case, for the Fix step to edit and save;
        returns what it changes against the scored label (:class:`auvcore.results.StructureChange`, or None)."""
        from auvcore.results import ResultsFolder

        from .proposal_view import load_proposal_into_segment

        loaded = shown.loaded
        return load_proposal_into_segment(slicer.mrmlScene, ResultsFolder(Path(cohort.folder)), loaded.case_id,
                                          structure, loaded.segmentation_node, shown.segment_id)


def highlightSegment(segmentationNode, segmentId: str) -> None:
    """Show ``segmentId`` fully and dim the other segments of the segmentation."""
    display = segmentationNode.GetDisplayNode()
    segmentation = segmentationNode.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        other = segmentation.GetNthSegmentID(index)
        display.SetSegmentVisibility(other, True)
        display.SetSegmentOpacity2DFill(other, 1.0 if other == segmentId else DIMMED_OPACITY)
        display.SetSegmentOpacity2DOutline(other, 1.0 if other == segmentId else DIMMED_OPACITY)


def worstSliceLocation(case, structure: str, score: str, segmentationNode, segmentId: str):
    """Where to look: the structure on its worst slice by ``score`` (or by the first per-slice scorer the case
    holds: :func:`auvcore.review.worst_slices.where_to_look`), else the structure's centre; with a line saying which."""
    from auvcore.review.worst_slices import where_to_look

    flag = where_to_look(case.record, structure, score)
    if flag is not None:
        return flag.ras, flag.describe()
    centre = [0.0, 0.0, 0.0]
    segmentationNode.GetSegmentCenterRAS(segmentId, centre)
    return tuple(centre), "centre of the structure (the case has no per-slice values)"
