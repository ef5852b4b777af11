"""The panel and the scene work where real Slicer behaves otherwise than the old stand-ins did (issue 26).

Slicer's behaviour comes from its source, in the stand-ins: the error dialog
shows and raises again (``test_panel.RecordingDialogs``), an exception out of a
slot stops at PythonQt, the plot view ignores the x column of Line and Bar
series and the layout manager writes the layout node (``headless``); the
scene, the segmentation export and the plots logic are slicer-core's real ones.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import slicer
from AUVSlicerLib.case_export import export_for_scoring
from AUVSlicerLib.case_loader import CaseLoader
from AUVSlicerLib.case_result import case_result_path, load_case_result
from AUVSlicerLib.logic import AUVLogic
from AUVSlicerLib.panel import AUVSlicerPanel
from AUVSlicerLib.results_table import uncertainty_bar_chart
from conftest import ORGANS
from headless import LayoutManager, plot_view_x
from test_panel import RecordingDialogs, RecordingJob, RecordingLogic, _parameter_node, _ui

Layouts = slicer.vtkMRMLLayoutNode


class ScoringLogic(RecordingLogic):
    """Exports stand-in files, and reads the scores back as the real logic does (a missing case file is an error)."""

    showCaseScores = AUVLogic.showCaseScores
    fail_export = False

    def exportCase(self, volume, segmentation, folder: Path):
        if self.fail_export:
            raise OSError(f"{folder}: no space left on device")
        folder.mkdir(parents=True)
        for name in ("image.nii.gz", "label.nii.gz"):
            (folder / name).write_bytes(b"")
        return types.SimpleNamespace(image=folder / "image.nii.gz", label=folder / "label.nii.gz", label_names=None)


@pytest.fixture
def scoring_panel(tmp_path):
    """The panel on a loaded case (stand-in nodes), its jobs recorded; case scoring writes under ``tmp_path/slicer``."""
    jobs: list[RecordingJob] = []

    def start_job(command, monitor, on_finished):
        jobs.append(RecordingJob(command, monitor, on_finished))
        return jobs[-1]

    (tmp_path / "slicer").mkdir()
    panel = AUVSlicerPanel(_ui(), ScoringLogic(tmp_path), start_job, RecordingDialogs(), lambda *args: None,
                           str(tmp_path / "slicer"))
    panel.connect()
    node = _parameter_node()
    node.inputVolume = types.SimpleNamespace(GetName=lambda: "ct 1")
    node.inputSegmentation = types.SimpleNamespace(IsA=lambda node_class: False)
    node.datasetPath, node.scoreOutputFolder = str(tmp_path / "dataset"), str(tmp_path / "out")
    panel.setParameterNode(node)
    panel.jobs = jobs
    return panel


def _case_folders(panel) -> list[Path]:
    return sorted(Path(panel.temporary_folder).glob("auv-case-*"))


def _idle(panel) -> bool:
    """No job runs: Stop is off, and the scoring buttons are on again."""
    ui = panel.ui
    return not ui.stopJobButton.enabled and ui.scoreCaseButton.enabled and ui.runScoringButton.enabled


def test_defect_3_when_showing_the_scores_fails_the_buttons_come_back(scoring_panel):
    """Slicer's error dialog raises again: the rest of the job's end must not depend on the scores showing."""
    panel = scoring_panel
    panel.ui.scoreCaseButton.emit("clicked(bool)", True)
    job = panel.jobs[-1]
    assert panel.ui.stopJobButton.enabled and not panel.ui.runScoringButton.enabled
    error = job.end(0)  # scored, but the case file is not there
    assert error is not None and "ct_1.json" in str(error)
    assert ("error", f"Failed to show the scores. {error}") in panel.dialogs.shown
    assert _idle(panel)


def test_defect_11_the_case_scoring_folder_is_deleted_however_the_job_ends(scoring_panel):
    """Slicer never empties its temporary folder: each "Score the case" would leave its exported volumes there."""
    panel = scoring_panel
    for code in (0, 1, -1):
        panel.ui.scoreCaseButton.emit("clicked(bool)", True)
        assert len(_case_folders(panel)) == 1 and (_case_folders(panel)[0] / "input" / "image.nii.gz").is_file()
        panel.jobs[-1].end(code)
        assert _case_folders(panel) == [], f"exit code {code}"
        assert _idle(panel)
    panel.logic.fail_export = True
    panel.ui.scoreCaseButton.emit("clicked(bool)", True)
    assert len(panel.jobs) == 3 and _case_folders(panel) == []
    assert isinstance(panel.ui.scoreCaseButton.uncaught[-1], OSError)


def test_defect_6_the_panel_asks_a_separate_process_whether_torch_loads(scoring_panel, monkeypatch):
    panel = scoring_panel
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails in Slicer's own process
    panel.showDependencyStatus()
    from AUVSlicerLib.dependencies import device_probe_command

    probe = panel.jobs[-1]
    assert probe.command == device_probe_command("PythonSlicer")
    assert panel.ui.deviceLabel.text == "Checking PyTorch..."
    probe.monitor.feed(b"Traceback (most recent call last):\n  File \"<string>\", line 1\n"
                       b"OSError: libcudart.so.12: cannot open shared object file\n")
    assert probe.end(1) is None
    assert panel.ui.dependencyStatusLabel.text == (
        "PyTorch is installed but does not load: OSError: libcudart.so.12: cannot open shared object file")
    assert panel.ui.deviceLabel.text == "Unknown: PyTorch does not load."
    panel.showDependencyStatus()
    panel.jobs[-1].monitor.feed(b"No GPU found: scoring and training use the CPU (slower, same results).\n")
    panel.jobs[-1].end(0)
    assert panel.ui.deviceLabel.text.startswith("No GPU found")


def test_defect_2_the_class_chart_draws_each_bar_at_its_label_value(scene, scored_cohort):
    """``PlotTypeBar`` puts bars at 0, 1, 2 ... under a "Label value" axis: label 1 read as 0, gaps shifted the rest."""
    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    series = uncertainty_bar_chart(scene, case).GetNthPlotSeriesNode(0)
    assert plot_view_x(series) == [1.0, 2.0, 5.0, 6.0] == [float(c.label_value) for c in case.scored_classes]


def test_defect_8_scoring_a_case_leaves_no_colour_table_in_the_scene(scene, scored_cohort, tmp_path):
    """``ExportSegmentsToLabelmapNode`` adds "<segmentation>_ColorTable" unless the label map shows a user table."""
    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    loaded = CaseLoader(scene).load(case.image, case.label, ORGANS, "ct_full")
    before = {node.GetName() for node in slicer.util.getNodesByClass("vtkMRMLColorTableNode", scene)}
    inputs = export_for_scoring(scene, loaded.volume_node, loaded.segmentation_node, tmp_path)
    after = {node.GetName() for node in slicer.util.getNodesByClass("vtkMRMLColorTableNode", scene)}
    assert after == before
    assert inputs.label.is_file()


def test_defect_9_after_close_scene_the_review_loads_its_case_again(scene, scored_cohort):
    """Close Scene (``mrmlScene.Clear(0)``) removes the loaded case's nodes; the loader must not hold on to them."""
    logic = AUVLogic()
    cohort = logic.openCohort(str(scored_cohort))
    queue = logic.openReview(cohort, "agreement")
    logic.showQueueEntry(cohort, queue.current, score="agreement")
    scene.Clear(0)
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    assert shown.loaded.segmentation_node.GetScene() is scene and shown.loaded.segmentation_node.GetDisplayNode()
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1


@pytest.mark.parametrize(("chosen", "shown"), [
    (Layouts.SlicerLayoutConventionalPlotView, Layouts.SlicerLayoutConventionalPlotView),
    (Layouts.SlicerLayoutOneUpPlotView, Layouts.SlicerLayoutOneUpPlotView),
    (Layouts.SlicerLayoutConventionalView, Layouts.SlicerLayoutConventionalPlotView),
])
def test_defect_10_showing_a_chart_keeps_the_users_layout_where_it_has_a_plot_view(scene, monkeypatch, chosen, shown):
    """``vtkSlicerPlotsLogic::ShowChartInLayout`` changes the layout only when it has no plot view."""
    layout = scene.AddNewNodeByClass("vtkMRMLLayoutNode")
    layout.SetViewArrangement(chosen)
    plots = slicer.vtkSlicerPlotsLogic()
    plots.SetMRMLScene(scene)
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(layoutManager=lambda: LayoutManager(layout)), raising=False)
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(plots=types.SimpleNamespace(logic=lambda: plots)),
                        raising=False)
    try:
        AUVLogic.showChart(scene.AddNewNodeByClass("vtkMRMLPlotChartNode"))
        assert layout.GetViewArrangement() == shown
    finally:
        plots.SetMRMLScene(None)
