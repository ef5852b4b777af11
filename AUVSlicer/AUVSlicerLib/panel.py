"""The module panel's behaviour: what each button and field does, on injected logic, jobs and dialogs.

:class:`AUVSlicerPanel` holds no Qt object of its own: it is handed the .ui's
widgets (``ui``), the logic, a ``start_job`` function that starts a background
job (in Slicer a :class:`~AUVSlicerLib.qt_job.QtProcessJob`) and the dialogs,
so the tests drive it with recording stand-ins, as SlicerNNUnet's widget tests do.

Path fields are kept in step with ``str`` parameters here rather than by the
parameter node wrapper: ``ctkPathLineEdit`` emits ``currentPathChanged`` only
for acceptable input (never for an empty text), so a cleared field would keep
its old file, and an unset ``pathlib.Path`` parameter would show as ".".

Example (inside Slicer; AUVSlicer.py does this):
    >>> panel = AUVSlicerPanel(ui, AUVLogic(), start_job=QtProcessJob.started)   # doctest: +SKIP
    >>> panel.connect()                                                           # doctest: +SKIP
"""

from __future__ import annotations

import pathlib
import re
import shutil
import tempfile
from collections.abc import Callable

from .job_commands import (
    BUNDLED,
    CASE_REVIEW_SCORERS,
    NNUNET,
    NnUNetTrainJob,
    ScoreJob,
    TrainJob,
    nnunet_train_command,
    score_command,
    train_command,
)
from .job_runner import JobMonitor, ProgressFormat
from .review_panel import ReviewPanel, selectedFirstCell

#: ``str`` parameter -> the ctkPathLineEdit that shows it.
PATH_FIELDS = {
    "checkpointPath": "checkpointPathLineEdit",
    "referencePath": "referencePathLineEdit",
    "resultsFolder": "resultsFolderPathLineEdit",
    "datasetPath": "datasetPathLineEdit",
    "scoreOutputFolder": "scoreOutputPathLineEdit",
    "trainOutputFolder": "trainOutputPathLineEdit",
}

#: The training panel's widgets that belong to one trainer: shown only while it is chosen.
TRAINER_WIDGETS = {
    BUNDLED: ("trainOutputLabel", "trainOutputPathLineEdit", "trainBackboneLabel", "trainBackboneComboBox", "duoCheckBox",
                "epochsLabel", "epochsSpinBox", "trainOnRetainedCheckBox"),
    NNUNET: ("nnunetDatasetLabel", "nnunetDatasetSpinBox", "nnunetConfigurationLabel", "nnunetConfigurationComboBox",
             "nnunetFoldLabel", "nnunetFoldComboBox", "nnunetTrainerLabel", "nnunetTrainerComboBox"),
}


class AUVSlicerPanel:
    """Behaviour of the AUV Slicer panel.

    Args:
        ui: the .ui's widgets by name (``slicer.util.childWidgetVariables``).
        logic: an :class:`~AUVSlicerLib.logic.AUVLogic` (or a stand-in).
        start_job: ``start_job(command, monitor, on_finished)`` starts a job and returns it
            (``running``, ``stop()``); ``on_finished(exit_code)`` comes on the GUI thread.
        dialogs: ``confirm(message) -> bool``, ``ask_save(message) -> "save" | "discard" | "cancel"``,
            ``info(message)``, ``warn(message)`` and ``errors(message)``, a context manager that shows an
            exception and raises it again (as ``slicer.util.tryWithErrorDisplay`` does), so what must happen
            whatever the outcome is in a ``finally``.
        fill_table: ``fill_table(table_widget, content, selected_first_cell)``.
        temporary_folder: where case scoring writes its files.
    """

    def __init__(self, ui, logic, start_job: Callable, dialogs, fill_table: Callable,
                 temporary_folder: str | None = None) -> None:
        self.ui, self.logic, self.start_job, self.dialogs, self.fill_table = ui, logic, start_job, dialogs, fill_table
        self.temporary_folder = temporary_folder
        self.node = None
        self.cohort = None
        self.cohortFolder = ""
        self.keepShown = 0.95  # the keep fraction the cohort table shows
        self.review = ReviewPanel(ui, logic, dialogs, fill_table)
        self.review.correctionsChanged = self._fillCohortTable  # its correction column
        self.job = None
        self.jobKind = ""
        self.deviceProbe = None
        self.monitor = JobMonitor(on_line=self._appendLog, on_progress=self._showProgress)

    # --- wiring ---

    def connect(self) -> None:
        ui = self.ui
        ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        ui.scoreCaseButton.connect("clicked(bool)", self.onScoreCase)
        ui.showUncertaintyCheckBox.connect("toggled(bool)", self.onShowUncertaintyToggled)
        ui.cohortTableWidget.connect("itemSelectionChanged()", self.onCohortSelectionChanged)
        ui.excludeCaseButton.connect("clicked(bool)", lambda: self.onDecision(exclude=True))
        ui.includeCaseButton.connect("clicked(bool)", lambda: self.onDecision(exclude=False))
        ui.keepFractionSliderWidget.connect("valueChanged(double)", lambda value: self._fillCohortTable(keep=value))
        ui.markQuantileButton.connect("clicked(bool)", self.onMarkQuantile)
        ui.saveExclusionsButton.connect("clicked(bool)", self.onSaveExclusions)
        ui.exportRetainedButton.connect("clicked(bool)", self.onExportRetained)
        ui.runScoringButton.connect("clicked(bool)", self.onRunScoring)
        ui.runTrainingButton.connect("clicked(bool)", self.onRunTraining)
        ui.stopJobButton.connect("clicked(bool)", self.onStopJob)
        self.review.connect()
        for parameter, widget in PATH_FIELDS.items():
            getattr(ui, widget).comboBox().connect(
                "editTextChanged(QString)", lambda text, parameter=parameter: self._pathEdited(parameter, text))

    def shortcuts(self) -> dict[str, Callable[[], None]]:
        """Key -> action, for the widget to bind as application shortcuts while the module is shown."""
        return self.review.shortcuts()

    def setParameterNode(self, node) -> None:
        self.node = self.review.node = node
        if node is not None:
            self.updateFromParameterNode()

    def updateFromParameterNode(self, caller=None, event=None) -> None:
        """Show the path parameters in their fields and enable what can run (also on every node change)."""
        if self.node is None:
            return
        for parameter, widget in PATH_FIELDS.items():
            field = getattr(self.ui, widget)
            if field.currentPath != getattr(self.node, parameter):
                field.currentPath = getattr(self.node, parameter)
        if self.node.resultsFolder != self.cohortFolder:
            self.onResultsFolderChanged(self.node.resultsFolder)
        self.updateButtons()

    def _pathEdited(self, parameter: str, text: str) -> None:
        if self.node is not None and getattr(self.node, parameter) != text.strip():
            setattr(self.node, parameter, text.strip())

    def updateButtons(self) -> None:
        node, running = self.node, self.running
        self.ui.scoreCaseButton.enabled = bool(not running and node and node.inputVolume and node.inputSegmentation)
        self.ui.runScoringButton.enabled = bool(not running and node and node.datasetPath and node.scoreOutputFolder)
        nnunet = bool(node and node.trainEngine == NNUNET)
        for trainer, widgets in TRAINER_WIDGETS.items():
            for widget in widgets:
                getattr(self.ui, widget).visible = (trainer == NNUNET) == nnunet
        # nnU-Net finds its preprocessed dataset by id; the bundled trainer needs a dataset and a run folder.
        self.ui.runTrainingButton.enabled = bool(not running and node and (nnunet or (node.datasetPath and node.trainOutputFolder)))
        self.ui.stopJobButton.enabled = running
        for button in ("excludeCaseButton", "includeCaseButton", "markQuantileButton", "saveExclusionsButton",
                       "exportRetainedButton"):
            getattr(self.ui, button).enabled = self.cohort is not None
        self.review.updateButtons()

    # --- dependencies ---

    def onInstallDependencies(self) -> None:
        if self._installDependencies() and self.cohort is None and self.cohortFolder:
            self._openResultsFolder(self.cohortFolder)  # it could not be opened without the core

    def _installDependencies(self) -> bool:
        """Install what is missing (asks first); whether everything is installed now."""
        from .dependencies import check_dependencies

        try:
            with self.dialogs.errors("Failed to install the dependencies."):
                self.logic.installDependencies(confirm=self.dialogs.confirm)
        finally:
            self.showDependencyStatus()
        return check_dependencies().ready

    def showDependencyStatus(self) -> None:
        """What is installed, from package metadata; whether PyTorch loads, from a separate process."""
        from .dependencies import check_dependencies, device_probe_command

        status = check_dependencies()
        self.ui.dependencyStatusLabel.text = status.describe()
        self.ui.installDependenciesButton.visible = not status.ready
        if status.torch_missing:
            self.ui.deviceLabel.text = "Known once PyTorch is installed."
            return
        if self.deviceProbe is not None and self.deviceProbe.running:
            return
        self.ui.deviceLabel.text = "Checking PyTorch..."
        monitor = JobMonitor(reads_progress=False)
        self.deviceProbe = self.start_job(device_probe_command(self.logic.pythonExecutable()), monitor,
                                          lambda code: self._showDeviceProbe(code, monitor))

    def _showDeviceProbe(self, exitCode: int, monitor: JobMonitor) -> None:
        from .dependencies import describe_device_probe

        found = describe_device_probe(exitCode, list(monitor.log))
        if exitCode == 0:
            self.ui.deviceLabel.text = found
        else:
            self.ui.dependencyStatusLabel.text = found
            self.ui.deviceLabel.text = "Unknown: PyTorch does not load."

    def _ensureDependencies(self) -> bool:
        from .dependencies import check_dependencies

        return check_dependencies().ready or self._installDependencies()

    # --- one case ---

    def onScoreCase(self) -> None:
        if not self._ensureDependencies():
            return
        node = self.node
        # Slicer never empties its temporary folder: the case's files go when the job ends (or fails to start).
        work = pathlib.Path(tempfile.mkdtemp(prefix="auv-case-", dir=self.temporary_folder))
        try:
            with self.dialogs.errors("Failed to prepare the case for scoring."):
                inputs = self.logic.exportCase(node.inputVolume, node.inputSegmentation, work / "input")
                caseId = re.sub(r"[^A-Za-z0-9._-]", "_", node.inputVolume.GetName()) or "case"  # PROGRESS splits on spaces
                settings = ScoreJob(
                    dataset=str(inputs.image), label=str(inputs.label), case_id=caseId, output=str(work / "scores"),
                    label_names=str(inputs.label_names) if inputs.label_names else "", **self._scoringOptions(),
                    scorers=CASE_REVIEW_SCORERS if node.scoringMode == "classwise" else "")
                segmentation = node.inputSegmentation
                if segmentation.IsA("vtkMRMLLabelMapVolumeNode"):
                    segmentation = node.inputSegmentation = self.logic.segmentationFromLabelmap(segmentation)
                self._startJob("case scoring", score_command(self.logic.pythonExecutable(), settings),
                               lambda: self._showCaseScores(segmentation, work / "scores", caseId),
                               lambda: shutil.rmtree(work, ignore_errors=True))
        except Exception:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def _scoringOptions(self) -> dict:
        node = self.node
        return {"backbone": node.backbone, "checkpoint": node.checkpointPath, "mode": node.scoringMode,
                "device": node.device, "runtime": node.runtime}

    def _showCaseScores(self, segmentation, folder: pathlib.Path, caseId: str) -> None:
        node = self.node
        with self.dialogs.errors("Failed to show the scores."):
            self._showCaseSummary(self.logic.showCaseScores(segmentation, folder, caseId, node.referencePath,
                                                            node.colormap, node.colorRange, node.colorScore))
            node.showUncertainty = True

    def _showCaseSummary(self, shown) -> None:
        self.ui.caseSummaryLabel.text = shown.summary
        self.ui.classTableView.setMRMLTableNode(shown.table)
        self.logic.showChart(shown.chart)

    def onShowUncertaintyToggled(self, checked: bool) -> None:
        segmentation = self.node.inputSegmentation if self.node else None
        if segmentation is None or not segmentation.IsA("vtkMRMLSegmentationNode"):
            return
        with self.dialogs.errors("Failed to switch the segment colours."):
            self.logic.setUncertaintyShown(segmentation, checked, self.node.colormap)

    # --- cohort browser ---

    def onResultsFolderChanged(self, folder: str) -> None:
        if folder == self.cohortFolder:
            return
        if not self.review.settleUnsavedEdits("closing the folder"):
            self.node.resultsFolder = self.cohortFolder
            return
        if self.cohort is not None and self.cohort.dirty and not self._settleUnsavedDecisions():
            self.node.resultsFolder = self.cohortFolder
            return
        self.cohortFolder = folder
        self._openResultsFolder(folder)

    def _openResultsFolder(self, folder: str) -> None:
        """Open the results in ``folder`` (none without a results.csv); the tables and buttons follow in any case."""
        self.cohort, problem = None, ""
        try:
            if not folder or not (pathlib.Path(folder) / "results.csv").is_file():
                problem = f"{folder} holds no results.csv." if folder else ""
            else:
                problem = "Reading a results folder needs AUVCore: install the dependencies to open it."
                if self._ensureDependencies():
                    problem = f"{folder} could not be opened."
                    with self.dialogs.errors("Failed to open the results folder."):
                        self.cohort = self.logic.openCohort(folder)
                        if self.cohort.autosave_found:
                            if self.dialogs.confirm("This folder has decisions that were never saved (autosave). "
                                                    "Recover them?"):
                                self.cohort.recover_autosave()
                            else:
                                self.cohort.discard_autosave()
                    problem = ""
        finally:
            self.review.setCohort(self.cohort)
            self._fillCohortTable()
            if problem:
                self.ui.cohortSummaryLabel.text = problem
            self.updateButtons()

    def _settleUnsavedDecisions(self) -> bool:
        """Ask what to do with unsaved decisions; False when the user cancels the change."""
        answer = self.dialogs.ask_save(f"The cohort {self.cohortFolder} has unsaved exclusion decisions. "
                                       "Save them before opening another folder?")
        if answer == "cancel":
            return False
        if answer == "save":
            try:
                self.onSaveExclusions()
            except Exception:  # noqa: BLE001 (its dialog showed why; the cohort stays open and unsaved)
                return False
            return not self.cohort.dirty
        self.cohort.discard_autosave()
        return True

    def _fillCohortTable(self, keep: float | None = None) -> None:
        """Show the open cohort at ``keep`` (default: the parameter's, or the one shown while the module is not)."""
        from .cohort_table import cohort_table_content

        if keep is None:  # a correction saved from the Segment Editor: this module is left, its node unset
            keep = self.node.keepFraction if self.node is not None else self.keepShown
        self.keepShown = keep
        content = None if self.cohort is None else cohort_table_content(self.cohort, keep)
        self.fill_table(self.ui.cohortTableWidget, content, self._selectedCaseId())
        self.ui.cohortSummaryLabel.text = content.summary if content else "No results folder open."

    def _selectedCaseId(self) -> str | None:
        return selectedFirstCell(self.ui.cohortTableWidget)

    def onCohortSelectionChanged(self) -> None:
        caseId = self._selectedCaseId()
        if caseId is None or self.cohort is None or not self.review.settleUnsavedEdits("loading another case"):
            return
        with self.dialogs.errors("Failed to load the case."):
            loaded, shown = self.logic.loadCohortCase(self.cohort, caseId, self.node.colormap, self.node.colorRange,
                                                      self.node.colorScore)
            self.review.caseLoadedFromTable()
            self._showLoaded(loaded, shown)

    def _showLoaded(self, loaded, shown) -> None:
        self.node.inputVolume = loaded.volume_node
        self.node.inputSegmentation = loaded.segmentation_node
        if shown is not None:
            self._showCaseSummary(shown)
        else:
            self.ui.caseSummaryLabel.text = f"{loaded.case_id} was not scored."
        edits = self.logic.loadedCaseEdits()
        if edits is not None:  # which label was loaded: the case's correction, or its source
            self.ui.caseSummaryLabel.text += f" Label: {edits.choice.describe()}."

    def onDecision(self, exclude: bool) -> None:
        caseId = self._selectedCaseId()
        if caseId is None:
            self.dialogs.warn("Select a case in the table first.")
            return
        try:
            with self.dialogs.errors("Failed to record the decision."):
                (self.cohort.exclude if exclude else self.cohort.include)(caseId, self.ui.decisionNoteLineEdit.text)
                self.ui.decisionNoteLineEdit.text = ""
        finally:
            self._fillCohortTable()

    def onMarkQuantile(self) -> None:
        try:
            with self.dialogs.errors("Failed to apply the quantile."):
                self.cohort.mark_quantile(self.node.keepFraction)
        finally:
            self._fillCohortTable()

    def onSaveExclusions(self) -> None:
        try:
            with self.dialogs.errors("Failed to save the exclusions."):
                self.dialogs.info(f"Saved {self.cohort.save()}")
        finally:
            self._fillCohortTable()

    def onExportRetained(self) -> None:
        with self.dialogs.errors("Failed to export the retained cohort."):
            manifest, splits = self.cohort.export_retained()
            self.dialogs.info(f"Wrote {manifest} and {splits}")

    # --- background jobs ---

    def onRunScoring(self) -> None:
        if not self._ensureDependencies():
            return
        output = self.node.scoreOutputFolder
        settings = ScoreJob(dataset=self.node.datasetPath, output=output, **self._scoringOptions())
        with self.dialogs.errors("Failed to start scoring."):
            self._startJob("cohort scoring", score_command(self.logic.pythonExecutable(), settings),
                           lambda: setattr(self.node, "resultsFolder", output))

    def onRunTraining(self) -> None:
        if not self._ensureDependencies():
            return
        node = self.node
        if node.trainEngine == NNUNET:
            settings = NnUNetTrainJob(node.nnunetDataset, node.nnunetConfiguration, node.nnunetFold, node.nnunetTrainer,
                                      node.device)
            with self.dialogs.errors("Failed to start nnU-Net training."):
                self._startJob("nnU-Net training", nnunet_train_command(self.logic.pythonExecutable(), settings),
                               progressFormat="nnunet")
            return
        exclusions = pathlib.Path(node.resultsFolder) / "exclusions.json" if node.resultsFolder else None
        settings = TrainJob(dataset=node.datasetPath, output=node.trainOutputFolder, backbone=node.trainBackbone,
                                 duo=node.duo, epochs=node.epochs, device=node.device,
                                 exclusions=str(exclusions) if node.trainOnRetained and exclusions and exclusions.is_file() else "")
        with self.dialogs.errors("Failed to start training."):
            self._startJob("training", train_command(self.logic.pythonExecutable(), settings))

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def _startJob(self, kind: str, command: list[str], followUp: Callable[[], None] | None = None,
                  cleanUp: Callable[[], None] | None = None, progressFormat: ProgressFormat = "auv") -> None:
        """Start a job; ``followUp`` runs after it succeeded, ``cleanUp`` after it ended in any way;
        ``progressFormat`` says how its output reports progress."""
        if self.running:
            raise RuntimeError(f"A {self.jobKind} job is still running; stop it first.")
        self.monitor.progress_format = progressFormat
        self.jobKind = kind
        self.ui.jobLogTextEdit.clear()
        self.ui.jobProgressBar.value = 0
        self._appendLog("$ " + " ".join(command))
        self.job = self.start_job(command, self.monitor, lambda code: self._jobFinished(code, followUp, cleanUp))
        self.ui.jobStatusLabel.text = f"Running {kind}..."
        self.updateButtons()

    def _appendLog(self, line: str) -> None:
        self.ui.jobLogTextEdit.appendPlainText(line)

    def _showProgress(self, progress) -> None:
        self.ui.jobProgressBar.value = int(100 * progress.fraction)
        self.ui.jobStatusLabel.text = f"{self.jobKind}: {progress.describe()}"

    def onStopJob(self) -> None:
        if self.running:
            self.job.stop()
        self.updateButtons()

    def _jobFinished(self, exitCode: int, followUp: Callable[[], None] | None,
                     cleanUp: Callable[[], None] | None) -> None:
        self.ui.jobStatusLabel.text = f"{self.jobKind}: {self.monitor.summary()}"
        try:
            if exitCode == 0 and followUp is not None:
                self.ui.jobProgressBar.value = 100
                followUp()
        finally:
            if cleanUp is not None:
                cleanUp()
            self.updateButtons()

    def cleanup(self) -> None:
        for job in (self.job, self.deviceProbe):
            if job is not None and job.running:
                job.stop()
