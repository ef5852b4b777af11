"""The "Score the loaded case" panel's path without the GUI: scene -> files -> real ``auv score`` -> colours."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import slicer
from auvcore.results import CaseProgress
from AUVSlicerLib.case_export import export_for_scoring
from AUVSlicerLib.case_loader import CaseLoader
from auvcore.review.case_scores import case_result_path, load_case_result
from AUVSlicerLib.colormap import UNDEFINED_COLOR
from AUVSlicerLib.job_commands import ScoreJob, score_command
from AUVSlicerLib.job_runner import JobStatus, SubprocessJob
from AUVSlicerLib.results_table import fill_results_table, uncertainty_bar_chart
from AUVSlicerLib.uncertainty_colors import UncertaintyColoring
from conftest import ORGANS, REPOSITORY


def test_a_loaded_and_renamed_case_is_scored_like_the_cohort_run(scene, scored_cohort):
    """Export the loaded segmentation, score it with the real CLI, colour it: the same voxels give the same S.

    The output folder is kept in ``Testing/data`` so later sessions hit the core's cache.
    """
    cohort_case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    loaded = CaseLoader(scene).load(cohort_case.image, cohort_case.label, ORGANS, "ct_full")
    segmentation = loaded.segmentation_node.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("liver")).SetName("liver reviewed")

    work = REPOSITORY / "Testing" / "data" / "auvslicer_scores" / "loaded_case"
    inputs = export_for_scoring(scene, loaded.volume_node, loaded.segmentation_node, work / "input")
    settings = ScoreJob(dataset=str(inputs.image), label=str(inputs.label), label_names=str(inputs.label_names),
                             case_id="loaded_ct", output=str(work / "scores"), device="cpu")
    job = SubprocessJob(score_command(sys.executable, settings))
    job.start()
    assert job.wait(1800) == 0, "\n".join(job.monitor.log)
    assert job.monitor.status is JobStatus.SUCCEEDED
    progress = job.monitor.progress
    assert isinstance(progress, CaseProgress) and (progress.index, progress.total, progress.case_id) == (1, 1, "loaded_ct")

    scored = load_case_result(case_result_path(work / "scores", "loaded_ct"))
    assert {c.name for c in scored.classes} == {"spleen", "kidney_right", "liver reviewed", "stomach"}
    for score in scored.classes:
        assert score.S == pytest.approx(cohort_case.class_by_label(score.label_value).S, abs=1e-4), score.name
    matched = UncertaintyColoring(scene).apply(loaded.segmentation_node, scored)
    assert len(matched) == len(ORGANS)


def test_a_class_without_a_score_is_grey_listed_with_its_reason_and_left_out_of_the_chart(scene, scored_cohort):
    """The core reports S as missing (never 0) for a class on fewer than 2 slices; the display says so."""
    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    missing = dataclasses.replace(case.class_by_label(2), S=math.nan, uncertainty=math.nan, rows=1,
                                  missing_reason="fewer than 2 slices hold the class")
    case = dataclasses.replace(case, classes=tuple(missing if c.label_value == 2 else c for c in case.classes))
    loaded = CaseLoader(scene).load(case.image, case.label, ORGANS, "ct_full")
    UncertaintyColoring(scene).apply(loaded.segmentation_node, case)
    segmentation = loaded.segmentation_node.GetSegmentation()
    kidney = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("kidney_right"))
    assert kidney.GetColor() == pytest.approx(UNDEFINED_COLOR)
    table = fill_results_table(scene, case)
    row = [table.GetCellText(r, 0) for r in range(table.GetNumberOfRows())].index("kidney_right")
    assert table.GetCellText(row, 5) == "fewer than 2 slices hold the class"
    assert math.isnan(table.GetTable().GetValueByName(row, "S").ToDouble())
    chart = uncertainty_bar_chart(scene, case)
    data = chart.GetNthPlotSeriesNode(0).GetTableNode()
    assert "kidney_right" not in [data.GetCellText(r, 0) for r in range(data.GetNumberOfRows())]
    assert isinstance(slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(loaded.segmentation_node.GetDisplayNode()),
                      slicer.vtkMRMLColorLegendDisplayNode)
