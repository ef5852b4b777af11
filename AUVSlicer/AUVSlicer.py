"""AUV Slicer: aleatoric uncertainty of volumes and annotations from a frozen foundation model.

The module is thin: the work is in ``AUVSlicerLib`` (Qt-free, tested headlessly)
and in the ``auvcore`` package, run as a background process.
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
import re
import shutil
import sys
import tempfile
from typing import Annotated, Union

import qt
import slicer
import vtk
from AUVSlicerLib.dependencies import (
    bundled_auvcore,
    check_dependencies,
    compute_device_report,
    install_missing,
)
from AUVSlicerLib.job_commands import (
    CASE_REVIEW_SCORERS,
    ScoreSettings,
    TrainSettings,
    score_command,
    train_command,
)
from AUVSlicerLib.job_runner import STOP_GRACE_SECONDS, JobMonitor, job_environment
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


class AUVSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("AUV Slicer")
        self.parent.categories = [_("Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["AUV Slicer contributors"]
        self.parent.helpText = _(
            "Scores the aleatoric uncertainty of a volume and its annotation with a frozen medical foundation model "
            "(LiteMedSAM embedded, MedSAM2 with your checkpoint), colour-codes each segment by U = 1 - S, "
            "browses and curates scored cohorts, and launches cohort scoring and DUO training. "
            "See the <a href=\"https://github.com/auv-slicer/AUVSlicer#readme\">documentation</a>."
        )
        self.parent.acknowledgementText = _(
            "Method: \"Delving Aleatoric Uncertainty in Medical Image Segmentation via Vision Foundation Models\" (CVPR 2026). "
            "Sample data: TotalSegmentator reference files."
        )


@parameterNodeWrapper
class AUVSlicerParameterNode:
    """Everything the panels show, so a saved scene remembers it (job settings included)."""

    inputVolume: vtkMRMLScalarVolumeNode
    # typing.Union: parameterNodeWrapper's node serializer recognises it in every Slicer 5 release.
    inputSegmentation: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]  # noqa: UP007
    referencePath: pathlib.Path
    colormap: Annotated[str, Choice(["viridis", "inferno"])] = "viridis"
    colorRange: Annotated[str, Choice(["case", "full"])] = "case"
    showUncertainty: bool = True
    backbone: Annotated[str, Choice(["litemedsam", "medsam2"])] = "litemedsam"
    checkpointPath: pathlib.Path
    scoringMode: Annotated[str, Choice(["classwise", "image"])] = "classwise"
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    resultsFolder: pathlib.Path
    keepFraction: Annotated[float, WithinRange(0.5, 1.0)] = 0.95
    datasetPath: pathlib.Path
    scoreOutputFolder: pathlib.Path
    trainOutputFolder: pathlib.Path
    trainBackbone: Annotated[str, Choice(["dynunet", "swinunetr"])] = "dynunet"
    duo: bool = True
    epochs: Annotated[int, WithinRange(1, 10000)] = 100
    trainOnRetained: bool = True


def _path_text(path: pathlib.Path | None) -> str:
    """A path parameter as text, "" when unset (an empty path widget reads as ".")."""
    text = str(path) if path is not None else ""
    return "" if text in ("", ".") else text


class AUVSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.cohort = None
        self.cohortFolder = ""
        self.jobKind = ""
        self.jobFollowUp = None
        self.monitor = JobMonitor(on_line=self._appendLog, on_progress=self._showProgress)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AUVSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AUVSlicerLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.process = qt.QProcess()
        self.process.setProcessChannelMode(qt.QProcess.MergedChannels)
        self.process.connect("readyReadStandardOutput()", self.onJobOutput)
        self.process.connect("finished(int,QProcess::ExitStatus)", self.onJobFinished)
        self.process.connect("errorOccurred(QProcess::ProcessError)", self.onJobError)

        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.scoreCaseButton.connect("clicked(bool)", self.onScoreCase)
        self.ui.showUncertaintyCheckBox.connect("toggled(bool)", self.onShowUncertaintyToggled)
        self.ui.resultsFolderPathLineEdit.connect("currentPathChanged(QString)", self.onResultsFolderChanged)
        self.ui.cohortTableWidget.connect("itemSelectionChanged()", self.onCohortSelectionChanged)
        self.ui.excludeCaseButton.connect("clicked(bool)", lambda: self.onDecision(exclude=True))
        self.ui.includeCaseButton.connect("clicked(bool)", lambda: self.onDecision(exclude=False))
        self.ui.keepFractionSliderWidget.connect("valueChanged(double)", lambda value: self._fillCohortTable(keep=value))
        self.ui.markQuantileButton.connect("clicked(bool)", self.onMarkQuantile)
        self.ui.saveExclusionsButton.connect("clicked(bool)", self.onSaveExclusions)
        self.ui.exportRetainedButton.connect("clicked(bool)", self.onExportRetained)
        self.ui.runScoringButton.connect("clicked(bool)", self.onRunScoring)
        self.ui.runTrainingButton.connect("clicked(bool)", self.onRunTraining)
        self.ui.stopJobButton.connect("clicked(bool)", self.onStopJob)

        self.initializeParameterNode()
        self._showDependencyStatus()
        self._updateButtons()

    def cleanup(self) -> None:
        self.removeObservers()
        if self.process.state() != qt.QProcess.NotRunning:
            self.onStopJob()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

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

    def setParameterNode(self, inputParameterNode: AUVSlicerParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    # --- state shown in the panels ---

    def _updateButtons(self, caller=None, event=None) -> None:
        # Missing dependencies do not disable anything: the first use offers to install them.
        node = self._parameterNode
        running = self.monitor.status.active
        self.ui.scoreCaseButton.enabled = bool(not running and node and node.inputVolume and node.inputSegmentation)
        self.ui.runScoringButton.enabled = bool(not running and node and _path_text(node.datasetPath)
                                                and _path_text(node.scoreOutputFolder))
        self.ui.runTrainingButton.enabled = bool(not running and node and _path_text(node.datasetPath)
                                                 and _path_text(node.trainOutputFolder))
        self.ui.stopJobButton.enabled = running
        hasCohort = self.cohort is not None
        for button in (self.ui.excludeCaseButton, self.ui.includeCaseButton, self.ui.markQuantileButton,
                       self.ui.saveExclusionsButton, self.ui.exportRetainedButton):
            button.enabled = hasCohort

    def _showDependencyStatus(self) -> None:
        status = check_dependencies()
        self.ui.dependencyStatusLabel.text = status.describe()
        self.ui.installDependenciesButton.visible = not status.ready
        if not status.torch_missing:
            self.ui.deviceLabel.text = compute_device_report()

    def onInstallDependencies(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to install the dependencies."), waitCursor=True):
            self.logic.installDependencies(confirm=slicer.util.confirmOkCancelDisplay)
        self._showDependencyStatus()
        self._updateButtons()

    def _ensureDependencies(self) -> bool:
        if check_dependencies().ready:
            return True
        self.onInstallDependencies()
        return check_dependencies().ready

    # --- scoring the loaded case ---

    def onScoreCase(self) -> None:
        if not self._ensureDependencies():
            return
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to prepare the case for scoring."), waitCursor=True):
            workFolder = pathlib.Path(tempfile.mkdtemp(prefix="auv-case-", dir=slicer.app.temporaryPath))
            inputs = self.logic.exportCase(node.inputVolume, node.inputSegmentation, workFolder / "input")
            # PROGRESS lines separate fields by spaces, so the id has none.
            caseId = re.sub(r"[^A-Za-z0-9._-]", "_", node.inputVolume.GetName()) or "case"
            settings = ScoreSettings(
                dataset=str(inputs.image), label=str(inputs.label),
                label_names=str(inputs.label_names) if inputs.label_names else "", case_id=caseId,
                output=str(workFolder / "scores"), **self._scoringOptions(),
                scorers=CASE_REVIEW_SCORERS if node.scoringMode == "classwise" else "")
            segmentation = node.inputSegmentation
            if segmentation.IsA("vtkMRMLLabelMapVolumeNode"):
                segmentation = self.logic.segmentationFromLabelmap(segmentation)
                node.inputSegmentation = segmentation
            self._startJob("case scoring", score_command(self.logic.pythonExecutable(), settings),
                           followUp=lambda: self._showCaseScores(segmentation, workFolder / "scores", caseId))

    def _scoringOptions(self) -> dict:
        node = self._parameterNode
        return {"backbone": node.backbone, "checkpoint": _path_text(node.checkpointPath), "mode": node.scoringMode,
                "device": node.device}

    def _showCaseScores(self, segmentationNode, resultsFolder: pathlib.Path, caseId: str) -> None:
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to show the scores."), waitCursor=True):
            shown = self.logic.showCaseScores(segmentationNode, resultsFolder, caseId, _path_text(node.referencePath),
                                              node.colormap, node.colorRange)
            self._showCaseSummary(shown)
            node.showUncertainty = True

    def _showCaseSummary(self, shown) -> None:
        self.ui.caseSummaryLabel.text = shown.summary
        self.ui.classTableView.setMRMLTableNode(shown.table)
        self.logic.showChart(shown.chart)

    def onShowUncertaintyToggled(self, checked: bool) -> None:
        segmentation = self._parameterNode.inputSegmentation if self._parameterNode else None
        if segmentation is None or not segmentation.IsA("vtkMRMLSegmentationNode"):
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to switch the segment colours.")):
            self.logic.setUncertaintyShown(segmentation, checked, self._parameterNode.colormap)

    # --- cohort browser ---

    def onResultsFolderChanged(self, folder: str) -> None:
        if folder == self.cohortFolder:
            return
        if self.cohort is not None and self.cohort.dirty and not self._settleUnsavedDecisions():
            self.ui.resultsFolderPathLineEdit.currentPath = self.cohortFolder
            return
        self.cohort = None
        self.cohortFolder = folder
        if folder and (pathlib.Path(folder) / "results.csv").is_file():
            with slicer.util.tryWithErrorDisplay(_("Failed to open the results folder."), waitCursor=True):
                self.cohort = self.logic.openCohort(folder)
                if self.cohort.autosave_found:
                    if slicer.util.confirmYesNoDisplay(_("This folder has decisions that were never saved (autosave). "
                                                         "Recover them?")):
                        self.cohort.recover_autosave()
                    else:
                        self.cohort.discard_autosave()
        self._fillCohortTable()
        self._updateButtons()

    def _settleUnsavedDecisions(self) -> bool:
        """Ask what to do with unsaved decisions; False when the user cancels the change."""
        answer = qt.QMessageBox.question(
            slicer.util.mainWindow(), _("Unsaved decisions"),
            _("The cohort {folder} has unsaved exclusion decisions. Save them before opening another folder?").format(
                folder=self.cohortFolder),
            qt.QMessageBox.Save | qt.QMessageBox.Discard | qt.QMessageBox.Cancel)
        if answer == qt.QMessageBox.Cancel:
            return False
        if answer == qt.QMessageBox.Save:
            self.onSaveExclusions()
            return not self.cohort.dirty
        self.cohort.discard_autosave()
        return True

    def _fillCohortTable(self, keep: float | None = None) -> None:
        """Show the cohort, keeping the user's sort and selection; cases above the ``keep`` quantile in orange."""
        keep = self._parameterNode.keepFraction if keep is None else keep
        table = self.ui.cohortTableWidget
        selected = self._selectedCaseId()
        header = table.horizontalHeader()
        sortColumn = header.sortIndicatorSection() if table.columnCount else -1
        sortOrder = header.sortIndicatorOrder() if table.columnCount else qt.Qt.DescendingOrder
        table.blockSignals(True)
        table.setSortingEnabled(False)
        table.clear()
        if self.cohort is None:
            table.setRowCount(0)
            table.setColumnCount(0)
            table.blockSignals(False)
            self.ui.cohortSummaryLabel.text = _("No results folder open.")
            return
        rows = self.cohort.table()
        threshold = self.cohort.quantile_threshold(keep)
        table.setColumnCount(len(rows.columns))
        table.setHorizontalHeaderLabels(list(rows.columns))
        table.setRowCount(len(rows))
        for rowIndex, row in enumerate(rows.itertuples(index=False)):
            aboveThreshold = threshold is not None and not math.isnan(row.auv) and row.auv > threshold
            for columnIndex, value in enumerate(row):
                item = qt.QTableWidgetItem()
                if isinstance(value, float):
                    item.setData(qt.Qt.DisplayRole, None if math.isnan(value) else round(value, 4))
                else:
                    item.setData(qt.Qt.DisplayRole, str(value))
                if row.excluded:
                    item.setForeground(qt.QBrush(qt.QColor("gray")))
                elif aboveThreshold:
                    item.setForeground(qt.QBrush(qt.QColor("darkorange")))
                table.setItem(rowIndex, columnIndex, item)
        table.setSortingEnabled(True)
        table.sortItems(sortColumn if 0 <= sortColumn < len(rows.columns) else list(rows.columns).index("auv"), sortOrder)
        for rowIndex in range(table.rowCount):
            if table.item(rowIndex, 0).text() == selected:
                table.selectRow(rowIndex)
        table.blockSignals(False)
        unsaved = _(" (unsaved changes)") if self.cohort.dirty else ""
        above = "" if threshold is None else _("; keeping {keep:.2f} puts the AUV threshold at {t:.4f} (cases above it in orange)").format(
            keep=keep, t=threshold)
        self.ui.cohortSummaryLabel.text = _("{n} cases, {kept} retained, {excluded} excluded{unsaved}{above}").format(
            n=len(rows), kept=len(self.cohort.retained()), excluded=int(rows["excluded"].sum()), unsaved=unsaved, above=above)

    def _selectedCaseId(self) -> str | None:
        items = self.ui.cohortTableWidget.selectedItems()
        return self.ui.cohortTableWidget.item(items[0].row(), 0).text() if items else None

    def onCohortSelectionChanged(self) -> None:
        caseId = self._selectedCaseId()
        if caseId is None or self.cohort is None:
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to load the case."), waitCursor=True):
            loaded, shown = self.logic.loadCohortCase(self.cohort, caseId, self._parameterNode.colormap,
                                                      self._parameterNode.colorRange)
            self._parameterNode.inputVolume = loaded.volume_node
            self._parameterNode.inputSegmentation = loaded.segmentation_node
            if shown is not None:
                self._showCaseSummary(shown)

    def onDecision(self, exclude: bool) -> None:
        caseId = self._selectedCaseId()
        if caseId is None:
            slicer.util.warningDisplay(_("Select a case in the table first."))
            return
        note = self.ui.decisionNoteLineEdit.text
        with slicer.util.tryWithErrorDisplay(_("Failed to record the decision.")):
            if exclude:
                self.cohort.exclude(caseId, note)
            else:
                self.cohort.include(caseId, note)
            self.ui.decisionNoteLineEdit.text = ""
        self._fillCohortTable()

    def onMarkQuantile(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to apply the quantile.")):
            self.cohort.mark_quantile(self._parameterNode.keepFraction)
        self._fillCohortTable()

    def onSaveExclusions(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to save the exclusions."), waitCursor=True):
            path = self.cohort.save()
            slicer.util.showStatusMessage(_("Saved {path}").format(path=path), 5000)
        self._fillCohortTable()

    def onExportRetained(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to export the retained cohort."), waitCursor=True):
            manifest, splits = self.cohort.export_retained()
            slicer.util.infoDisplay(_("Wrote {manifest} and {splits}").format(manifest=manifest, splits=splits))

    # --- background jobs ---

    def onRunScoring(self) -> None:
        if not self._ensureDependencies():
            return
        node = self._parameterNode
        output = _path_text(node.scoreOutputFolder)
        settings = ScoreSettings(dataset=_path_text(node.datasetPath), output=output, **self._scoringOptions())
        with slicer.util.tryWithErrorDisplay(_("Failed to start scoring.")):
            self._startJob("cohort scoring", score_command(self.logic.pythonExecutable(), settings),
                           followUp=lambda: self._openResults(output))

    def _openResults(self, folder: str) -> None:
        self._parameterNode.resultsFolder = pathlib.Path(folder)

    def onRunTraining(self) -> None:
        if not self._ensureDependencies():
            return
        node = self._parameterNode
        exclusions = ""
        if node.trainOnRetained and _path_text(node.resultsFolder):
            candidate = pathlib.Path(_path_text(node.resultsFolder)) / "exclusions.json"
            exclusions = str(candidate) if candidate.is_file() else ""
        settings = TrainSettings(dataset=_path_text(node.datasetPath), output=_path_text(node.trainOutputFolder),
                                 backbone=node.trainBackbone, duo=node.duo, epochs=node.epochs, device=node.device,
                                 exclusions=exclusions)
        with slicer.util.tryWithErrorDisplay(_("Failed to start training.")):
            self._startJob("training", train_command(self.logic.pythonExecutable(), settings))

    def _startJob(self, kind: str, command: list[str], followUp=None) -> None:
        if self.process.state() != qt.QProcess.NotRunning:
            raise RuntimeError(_("A {kind} job is still running; stop it first.").format(kind=self.jobKind))
        self.jobKind, self.jobFollowUp = kind, followUp
        self.ui.jobLogTextEdit.clear()
        self.ui.jobProgressBar.value = 0
        self.monitor.started()
        self._appendLog("$ " + " ".join(command))
        environment = qt.QProcessEnvironment()
        for key, value in job_environment().items():
            environment.insert(key, value)
        self.process.setProcessEnvironment(environment)
        self.process.start(command[0], command[1:])
        self.ui.jobStatusLabel.text = _("Running {kind}...").format(kind=kind)
        self._updateButtons()

    def onJobOutput(self) -> None:
        self.monitor.feed(bytes(self.process.readAllStandardOutput().data()))

    def _appendLog(self, line: str) -> None:
        self.ui.jobLogTextEdit.appendPlainText(line)

    def _showProgress(self, progress) -> None:
        self.ui.jobProgressBar.value = int(100 * progress.fraction)
        self.ui.jobStatusLabel.text = f"{self.jobKind}: {progress.describe()}"

    def onStopJob(self) -> None:
        if self.process.state() == qt.QProcess.NotRunning:
            return
        self.monitor.stop_requested()
        self.process.terminate()
        qt.QTimer.singleShot(int(STOP_GRACE_SECONDS * 1000), self._killIfStillRunning)
        self._updateButtons()

    def _killIfStillRunning(self) -> None:
        if self.process.state() != qt.QProcess.NotRunning:
            self.process.kill()

    def onJobFinished(self, exitCode: int, exitStatus) -> None:
        self.onJobOutput()
        self.monitor.finished(exitCode if exitStatus == qt.QProcess.NormalExit else -1)
        self.ui.jobStatusLabel.text = f"{self.jobKind}: {self.monitor.summary()}"
        followUp, self.jobFollowUp = self.jobFollowUp, None
        if self.monitor.exit_code == 0 and followUp is not None:
            self.ui.jobProgressBar.value = 100
            followUp()
        self._updateButtons()

    def onJobError(self, error) -> None:
        if error == qt.QProcess.FailedToStart:
            self.monitor.failed_to_start(_("The job could not start: {reason}").format(reason=self.process.errorString()))
            self.ui.jobStatusLabel.text = self.monitor.summary()
            self._updateButtons()


class AUVSlicerLogic(ScriptedLoadableModuleLogic):
    """Entry point for scripts and the tests; the work is in AUVSlicerLib."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.caseLoader = None

    def getParameterNode(self):
        return AUVSlicerParameterNode(super().getParameterNode())

    @staticmethod
    def pythonExecutable() -> str:
        """Slicer's own Python (it has auvcore); jobs run it as a separate process."""
        return shutil.which("PythonSlicer") or sys.executable

    @staticmethod
    def installDependencies(confirm) -> bool:
        """Install PyTorch and the bundled AUVCore if missing, after ``confirm(message)`` agreed."""
        return install_missing(check_dependencies(), confirm, _installTorch, _pipInstall,
                               bundled_auvcore(os.path.dirname(__file__)))

    @staticmethod
    def exportCase(volumeNode, labelNode, folder):
        from AUVSlicerLib.case_export import export_for_scoring

        return export_for_scoring(slicer.mrmlScene, volumeNode, labelNode, folder)

    @staticmethod
    def segmentationFromLabelmap(labelmapNode):
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", labelmapNode.GetName() + " segmentation")
        segmentation.CreateDefaultDisplayNodes()
        slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelmapNode, segmentation)
        from AUVSlicerLib.uncertainty_colors import LABEL_VALUE_TAG

        contents = segmentation.GetSegmentation()
        for index in range(contents.GetNumberOfSegments()):
            segment = contents.GetSegment(contents.GetNthSegmentID(index))
            segment.SetTag(LABEL_VALUE_TAG, str(segment.GetLabelValue()))
        return segmentation

    def showCaseScores(self, segmentationNode, resultsFolder, caseId: str, referencePath: str = "",
                       colormap: str = "viridis", colorRange: str = "case"):
        """Colour ``segmentationNode`` from a case's scores, fill its table and chart; returns a ShownScores."""
        from AUVSlicerLib.case_result import case_result_path, load_case_result

        case = load_case_result(case_result_path(resultsFolder, caseId))
        return self.showCaseResult(segmentationNode, case, referencePath, colormap, colorRange)

    @staticmethod
    def showCaseResult(segmentationNode, case, referencePath: str = "", colormap: str = "viridis",
                       colorRange: str = "case"):
        """``colorRange`` "case" spreads the colour map over the case's U values, "full" over [0, 1]."""
        from AUVSlicerLib.colormap import spread_range
        from AUVSlicerLib.reference_cohort import load_reference_cohort
        from AUVSlicerLib.results_table import fill_results_table, uncertainty_bar_chart
        from AUVSlicerLib.uncertainty_colors import UncertaintyColoring

        if case.status != "ok":
            raise RuntimeError(f"{case.case_id} was not scored: {case.error}")
        valueRange = spread_range([c.uncertainty for c in case.scored_classes]) if colorRange == "case" else (0.0, 1.0)
        matched = UncertaintyColoring(slicer.mrmlScene).apply(segmentationNode, case, colormap, valueRange)
        summary = f"{case.case_id}: S = {case.S:.3f} over {len(case.scored_classes)} classes; {len(matched)} segments coloured."
        if referencePath:
            cohort = load_reference_cohort(referencePath)
            cohort.check_comparable(case.backbone, case.mode)
            summary += " " + cohort.place(case.S).describe()
        return ShownScores(case, fill_results_table(slicer.mrmlScene, case), uncertainty_bar_chart(slicer.mrmlScene, case),
                           summary)

    @staticmethod
    def setUncertaintyShown(segmentationNode, shown: bool, colormap: str) -> None:
        from AUVSlicerLib.uncertainty_colors import UncertaintyColoring

        coloring = UncertaintyColoring(slicer.mrmlScene)
        if not coloring.has_uncertainty(segmentationNode):
            return
        if shown:
            coloring.show_uncertainty(segmentationNode, colormap)
        else:
            coloring.show_original(segmentationNode)

    @staticmethod
    def showChart(chartNode) -> None:
        """Show the chart in a layout with a plot view, beside the slices."""
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotView)
        slicer.modules.plots.logic().ShowChartInLayout(chartNode)

    @staticmethod
    def openCohort(folder: str):
        from AUVSlicerLib.cohort_model import CohortModel

        return CohortModel(folder)

    def loadCohortCase(self, cohort, caseId: str, colormap: str = "viridis", colorRange: str = "case"):
        """Load a cohort case (unloading the previous one) and show its scores when it has them."""
        from AUVSlicerLib.case_loader import CaseLoader

        if self.caseLoader is None:
            self.caseLoader = CaseLoader(slicer.mrmlScene)
        image, label = cohort.case_files(caseId)
        if label is None:
            raise ValueError(f"case {caseId} has no label map to show")
        case = cohort.case_result(caseId)
        loaded = self.caseLoader.load(image, label, {c.label_value: c.name for c in case.classes}, case_id=caseId)
        slicer.util.setSliceViewerLayers(background=loaded.volume_node, fit=True)
        shown = self.showCaseResult(loaded.segmentation_node, case, "", colormap, colorRange) if case.status == "ok" else None
        return loaded, shown


class ShownScores:
    """What showing a case's scores produced: the case, its table and chart nodes, a summary line."""

    def __init__(self, case, table, chart, summary: str) -> None:
        self.case, self.table, self.chart, self.summary = case, table, chart, summary


def _pipInstall(requirement: str) -> None:
    try:
        import slicer.packaging
    except ImportError:  # Slicer before 5.11
        slicer.util.pip_install(requirement)
        return
    slicer.packaging.pip_install(requirement, requester="AUV Slicer")


def _installTorch(requirement: str) -> None:
    """PyTorch through the PyTorch extension (it picks the build for this GPU and driver), else pip."""
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        logging.getLogger(__name__).info("The PyTorch extension is not installed; installing %s with pip", requirement)
        _pipInstall(requirement)
        return
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                         torchVersionRequirement=requirement[len("torch"):])
    if torch is None:
        raise RuntimeError("the PyTorch extension could not install PyTorch")


class AUVSlicerTest(ScriptedLoadableModuleTest):
    """The real workflow inside Slicer on the sample data: score a case, colour it, curate a cohort."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ScoreAndCurateSampleCohort()

    def _runJob(self, command: list[str]) -> None:
        from AUVSlicerLib.job_runner import SubprocessJob

        job = SubprocessJob(command)
        job.start()
        code = job.wait(3600)
        self.assertEqual(code, 0, "\n".join(job.monitor.log))

    def test_ScoreAndCurateSampleCohort(self):
        self.delayDisplay("Checking dependencies")
        logic = AUVSlicerLogic()
        self.assertTrue(logic.installDependencies(confirm=lambda message: True))
        from auvcore.sample_data import fetch_sample_cohort
        from AUVSlicerLib.uncertainty_colors import UncertaintyColoring

        work = pathlib.Path(tempfile.mkdtemp(prefix="auv-selftest-", dir=slicer.app.temporaryPath))
        manifest = fetch_sample_cohort(work / "sample")

        self.delayDisplay("Scoring three cases of the sample cohort (LiteMedSAM on the CPU)")
        subset = manifest.parent / "three_cases.csv"  # beside the manifest: its paths are relative to it
        subset.write_text("\n".join(manifest.read_text().splitlines()[:4]) + "\n")
        results = work / "results"
        self._runJob(score_command(logic.pythonExecutable(), ScoreSettings(dataset=str(subset), output=str(results),
                                                                            device="cpu")))

        self.delayDisplay("Loading a case from the cohort and colouring it by uncertainty")
        cohort = logic.openCohort(str(results))
        self.assertEqual(len(cohort.case_ids), 3)
        loaded, shown = logic.loadCohortCase(cohort, "ct_full_model")
        self.assertIsNotNone(shown)
        self.assertEqual(shown.table.GetNumberOfRows(), len(shown.case.classes))
        coloring = UncertaintyColoring(slicer.mrmlScene)
        self.assertTrue(coloring.is_showing_uncertainty(loaded.segmentation_node))
        logic.setUncertaintyShown(loaded.segmentation_node, False, "viridis")
        self.assertFalse(coloring.is_showing_uncertainty(loaded.segmentation_node))

        self.delayDisplay("Selecting the next case unloads the previous one")
        previous = loaded.volume_node.GetID()
        logic.loadCohortCase(cohort, "ct_fast_model")
        self.assertIsNone(slicer.mrmlScene.GetNodeByID(previous))

        self.delayDisplay("Excluding a case, saving, exporting the retained cohort")
        cohort.exclude("ct_fast_model", note="self-test")
        cohort.save()
        self.assertEqual(logic.openCohort(str(results)).exclusions.excluded(), {"ct_fast_model"})
        manifestPath, splitsPath = cohort.export_retained(work / "export")
        self.assertTrue(manifestPath.is_file() and splitsPath.is_file())
        self.delayDisplay("Test passed")
