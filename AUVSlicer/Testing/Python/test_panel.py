"""The panel driven through its widgets' signals, with recording stand-ins for the logic, the job and the dialogs.

As SlicerNNUnet's widget tests do: the .ui's widgets are stand-ins that record
what the panel sets and emit the signals a user's clicks would; the logic and
the job runner are recording stand-ins; the review queue and ``review.json``
are real. The stand-ins behave as Slicer does where the panel depends on it:
the error dialog shows and then raises again (``slicer.util.tryWithErrorDisplay``),
and an exception out of a slot stops at PythonQt, which prints it.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from xml.etree import ElementTree

import pytest
from auvcore.results import REVIEW_JSON, load_review
from AUVSlicerLib.case_result import case_result_from_dict
from AUVSlicerLib.job_runner import JobStatus
from AUVSlicerLib.panel import PATH_FIELDS, AUVSlicerPanel
from AUVSlicerLib.review_panel import SHORTCUTS
from AUVSlicerLib.review_queue import ReviewQueue
from slicer_python import MODULE_FOLDER


def call_as_slot(slot, *args) -> Exception | None:
    """Call ``slot`` as PythonQt calls a Python slot: an exception is printed (``PythonQt::handleError``) and goes
    no further than the signal; returned here so tests can see it."""
    try:
        slot(*args)
    except Exception as error:  # noqa: BLE001
        return error
    return None


class StandInWidget:
    """A .ui widget: records properties and slots, emits signals, and has what the panel calls."""

    def __init__(self, name: str) -> None:
        self.name, self.text, self.enabled, self.visible, self.value, self.currentPath = name, "", True, True, 0, ""
        self.slots: dict[str, list] = {}
        self.lines: list[str] = []
        self.combo = None
        self.uncaught: list[Exception] = []

    def connect(self, signal: str, slot) -> None:
        self.slots.setdefault(signal, []).append(slot)

    def emit(self, signal: str, *args) -> None:
        """Call each slot as PythonQt does: with as many of the signal's arguments as the slot takes; what a slot
        raises is printed and the signal goes on (kept in ``uncaught``)."""
        for slot in self.slots[signal]:
            parameters = inspect.signature(slot).parameters.values()
            takes_all = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
            error = call_as_slot(slot, *(args if takes_all else args[:len(parameters)]))
            if error is not None:
                self.uncaught.append(error)

    def property(self, name: str):
        """No dynamic property (the parameter node wrapper's connectGui asks each widget for SlicerParameterName)."""
        return None

    def comboBox(self) -> StandInWidget:
        self.combo = self.combo or StandInWidget(self.name + ".comboBox")
        return self.combo

    def clear(self) -> None:
        self.lines.clear()

    def appendPlainText(self, line: str) -> None:
        self.lines.append(line)

    def setMRMLTableNode(self, node) -> None:
        self.table_node = node

    def selectedItems(self) -> list:
        return []


def _ui() -> types.SimpleNamespace:
    names = [w.get("name") for w in ElementTree.parse(MODULE_FOLDER / "Resources/UI/AUVSlicer.ui").getroot().iter("widget")]
    return types.SimpleNamespace(**{name: StandInWidget(name) for name in names})


def _parameter_node() -> types.SimpleNamespace:
    """The parameter node's fields with their defaults (the real wrapper is tested in test_slicer_python)."""
    return types.SimpleNamespace(
        inputVolume=None, inputSegmentation=None, referencePath="", colorScore="auv", colormap="viridis",
        colorRange="case", showUncertainty=True, backbone="litemedsam", checkpointPath="", scoringMode="classwise",
        device="auto", runtime="auto", resultsFolder="", keepFraction=0.95, datasetPath="", scoreOutputFolder="",
        trainOutputFolder="", trainBackbone="dynunet", duo=True, epochs=1000, trainOnRetained=True)


class RecordingJob:
    def __init__(self, command, monitor, on_finished) -> None:
        self.command, self.monitor, self.on_finished = command, monitor, on_finished
        self.running, self.stops = True, 0
        monitor.started()

    def stop(self) -> None:
        self.stops += 1
        self.monitor.stop_requested()

    def end(self, code: int) -> Exception | None:
        """The process ended: ``on_finished`` runs in QtProcessJob's ``finished`` slot; what it raised is returned."""
        self.running = False
        self.monitor.finished(code)
        return call_as_slot(self.on_finished, code)


class RecordingDialogs:
    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    def confirm(self, message: str) -> bool:
        self.shown.append(("confirm", message))
        return True

    def ask_save(self, message: str) -> str:
        self.shown.append(("ask_save", message))
        return "discard"

    def info(self, message: str) -> None:
        self.shown.append(("info", message))

    def warn(self, message: str) -> None:
        self.shown.append(("warn", message))

    @contextlib.contextmanager
    def errors(self, message: str):
        """As ``slicer.util.tryWithErrorDisplay`` (Base/Python/slicer/util.py, v5.10.0 and v5.12.3): show any
        exception, then raise it again."""
        try:
            yield
        except Exception as error:
            self.shown.append(("error", f"{message} {error}"))
            raise


def _case(case_id: str, u: dict[str, float]):
    return case_result_from_dict({"case_id": case_id, "status": "ok", "classes": [
        {"id": i, "name": name, "S": 1 - value, "U": value, "rows": 5} for i, (name, value) in enumerate(u.items(), 1)]},
        case_id)


class RecordingLogic:
    """Records every call; the review queue it opens is real, over four synthetic cases."""

    def __init__(self, folder) -> None:
        self.folder, self.calls = folder, []
        self.cases = [_case("a", {"liver": 0.90, "spleen": 0.95}), _case("b", {"liver": 0.91, "spleen": 0.95}),
                      _case("c", {"liver": 0.99, "spleen": 0.96}), _case("d", {"liver": 0.92, "spleen": 0.94})]

    def __getattr__(self, name: str):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
        return record

    def pythonExecutable(self) -> str:
        return "PythonSlicer"

    @staticmethod
    def hasUnsavedEdits() -> bool:
        return False  # the real edit tracking is tested in test_fix_step

    @staticmethod
    def loadedCaseEdits():
        return None

    def openReview(self, cohort, score):
        self.calls.append(("openReview", (cohort, score), {}))
        return ReviewQueue.open(self.folder, self.cases, score)

    def explainStructure(self, cohort, case_id, structure):
        self.calls.append(("explainStructure", (case_id, structure), {}))
        return types.SimpleNamespace(S=0.0412)

    def showQueueEntry(self, cohort, entry, colormap, score):
        self.calls.append(("showQueueEntry", (entry.case_id, entry.structure), {}))
        loaded = types.SimpleNamespace(volume_node="volume " + entry.case_id, segmentation_node="seg " + entry.case_id)
        return types.SimpleNamespace(loaded=loaded, where="worst agreement slice")


@pytest.fixture
def panel(tmp_path):
    jobs: list[RecordingJob] = []
    tables: list = []

    def start_job(command, monitor, on_finished):
        jobs.append(RecordingJob(command, monitor, on_finished))
        return jobs[-1]

    panel = AUVSlicerPanel(_ui(), RecordingLogic(tmp_path), start_job, RecordingDialogs(),
                           lambda table, content, selected: tables.append((table.name, content, selected)),
                           str(tmp_path))
    panel.connect()
    panel.setParameterNode(_parameter_node())
    panel.jobs, panel.tables = jobs, tables
    return panel


def test_path_fields_show_unset_as_empty_and_clearing_one_reaches_the_parameter_node(panel):
    """Defect 5: ctkPathLineEdit's currentPathChanged never fires for an empty text; editTextChanged does."""
    assert all(getattr(panel.ui, widget).currentPath == "" for widget in PATH_FIELDS.values())
    field = panel.ui.referencePathLineEdit.comboBox()
    field.emit("editTextChanged(QString)", "/data/cohort/reference.json")
    assert panel.node.referencePath == "/data/cohort/reference.json"
    field.emit("editTextChanged(QString)", "")
    assert panel.node.referencePath == ""
    panel.node.checkpointPath = "/models/medsam2 tiny.pt"
    panel.updateFromParameterNode()
    assert panel.ui.checkpointPathLineEdit.currentPath == "/models/medsam2 tiny.pt"


def test_run_scoring_starts_a_job_stop_stops_it_and_success_opens_the_results(panel, tmp_path):
    node = panel.node
    assert not panel.ui.runScoringButton.enabled
    node.datasetPath, node.scoreOutputFolder = str(tmp_path / "dataset"), str(tmp_path / "out")
    panel.updateButtons()
    panel.ui.runScoringButton.emit("clicked(bool)", True)
    job = panel.jobs[-1]
    assert job.command[0] == "PythonSlicer" and "score" in job.command and str(tmp_path / "dataset") in job.command
    assert panel.ui.stopJobButton.enabled and not panel.ui.runTrainingButton.enabled
    panel.ui.runScoringButton.emit("clicked(bool)", True)
    assert len(panel.jobs) == 1 and any("still running" in text for kind, text in panel.dialogs.shown if kind == "error")
    job.monitor.feed(b"PROGRESS case=1/4 id=a status=ok\n")
    assert panel.ui.jobProgressBar.value == 25 and "case 1/4" in panel.ui.jobStatusLabel.text
    panel.ui.stopJobButton.emit("clicked(bool)", True)
    assert job.stops == 1
    job.end(-1)
    assert job.monitor.status is JobStatus.STOPPED and node.resultsFolder == ""
    panel.ui.runScoringButton.emit("clicked(bool)", True)
    panel.jobs[-1].end(0)
    assert node.resultsFolder == str(tmp_path / "out") and not panel.ui.stopJobButton.enabled


def test_the_review_is_walked_with_the_shortcuts_and_verdicts_are_written_at_once(panel, tmp_path):
    panel.review.setCohort(types.SimpleNamespace(folder=tmp_path))
    panel.node.colorScore = "auv"
    panel.ui.startReviewButton.emit("clicked(bool)", True)
    assert ("openReview", (panel.review.cohort, "auv"), {}) in panel.logic.calls
    assert panel.logic.calls[-1] == ("showQueueEntry", ("c", "liver"), {}), "the unusual liver comes first"
    assert panel.node.inputVolume == "volume c" and panel.ui.reviewProgressLabel.text == "reviewed 0 of 8"
    shortcuts = panel.shortcuts()
    assert set(shortcuts) == set(SHORTCUTS)
    panel.ui.reviewNoteLineEdit.text = "tip of the left lobe"
    shortcuts["2"]()  # needs fix, then on to the next structure
    assert load_review(tmp_path / REVIEW_JSON).get("c", "liver").describe() == "needs_fix: tip of the left lobe"
    assert panel.review.queue.position == 1 and panel.ui.reviewNoteLineEdit.text == ""
    shortcuts["1"]()
    shortcuts["P"]()
    assert panel.review.queue.position == 1 and "Verdict: correct" in panel.ui.reviewStructureLabel.text
    shortcuts["U"]()
    assert panel.review.queue.verdict_of(panel.review.queue.current) is None
    shortcuts["3"]()
    assert panel.ui.reviewProgressLabel.text == "reviewed 3 of 8"
    assert load_review(tmp_path / REVIEW_JSON).counts() == {"correct": 1, "needs_fix": 1, "unsure": 1, "fixed": 0}
    name, _content, selected = panel.tables[-1]
    assert name == "reviewQueueTableWidget" and selected == str(panel.review.queue.position + 1)
    assert not [entry for entry in panel.dialogs.shown if entry[0] == "error"]


def test_explain_shows_the_current_structure_of_the_queue(panel, tmp_path):
    panel.review.setCohort(types.SimpleNamespace(folder=tmp_path))
    panel.node.colorScore = "auv"
    panel.ui.explainStructureButton.emit("clicked(bool)", True)  # no queue yet: nothing to explain
    assert not [call for call in panel.logic.calls if call[0] == "explainStructure"]
    panel.ui.startReviewButton.emit("clicked(bool)", True)
    panel.shortcuts()["E"]()
    assert panel.logic.calls[-1] == ("explainStructure", ("c", "liver"), {})
    assert ("info", "c / liver: energy spectrum of z_c (S = 0.0412) and its mask logits") in panel.dialogs.shown
