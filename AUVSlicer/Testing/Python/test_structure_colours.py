"""Colours that mean "unusual for this structure in this cohort", on real scores, with the legend saying which scale.

The reference cohort is the three scored cases of the sample CT (``conftest.scored_cohort``);
``ct_shifted``'s liver is moved three slices, the others are TotalSegmentator's labels.
"""

from __future__ import annotations

import math

import pytest
import slicer
from auvcore.results import class_matrix
from auvcore.scales import ScoreScale
from AUVSlicerLib.case_loader import CaseLoader
from AUVSlicerLib.colormap import UNDEFINED_COLOR, uncertainty_color
from AUVSlicerLib.logic import AUVLogic
from auvcore.results.colours import Z_RANGE
from auvcore.review.colour_plan import colour_plan
from AUVSlicerLib.uncertainty_colors import UncertaintyColoring


@pytest.fixture
def cohort(scored_cohort):
    logic = AUVLogic()
    model = logic.openCohort(str(scored_cohort))
    return model, logic.cohortScores(model)


def _colours(segmentation_node, digits: int | None = 4) -> dict[str, tuple[float, ...]]:
    segmentation = segmentation_node.GetSegmentation()
    segments = [segmentation.GetSegment(segmentation.GetNthSegmentID(i)) for i in range(segmentation.GetNumberOfSegments())]
    return {s.GetName(): tuple(c if digits is None else round(c, digits) for c in s.GetColor()) for s in segments}


def test_a_structure_is_placed_within_the_same_structure_across_the_cohort(cohort):
    model, scores = cohort
    shifted = model.case_result("ct_shifted")
    records = [model.case_result(case_id).record for case_id in model.case_ids]
    core = ScoreScale.fit(class_matrix(records, "agreement"), "mean").class_z(class_matrix([shifted.record], "agreement"))
    assert scores.z_of(shifted, "agreement") == pytest.approx(core.loc["ct_shifted"].to_dict()), "the core's z"
    plan = colour_plan(shifted, "agreement", scores)
    assert plan.relative and plan.value_range == Z_RANGE
    assert plan.values["liver"] == Z_RANGE[1], "the shifted liver is 3 or more robust deviations out"
    assert all(v < 1.0 for name, v in plan.values.items() if name != "liver"), "its untouched organs are typical"
    assert "robust z within each structure, 3 reference cases" in plan.title


def test_the_case_own_range_only_without_a_reference_and_the_legend_says_so(cohort):
    model, _ = cohort
    case = model.case_result("ct_full")
    plan = colour_plan(case, "auv", reference=None)
    assert not plan.relative and "no reference cohort" in plan.title
    u = sorted(c.uncertainty for c in case.scored_classes)
    assert plan.value_range == (round(u[0], 6), round(u[-1], 6))
    assert colour_plan(case, "auv", None, color_range="full").value_range == (0.0, 1.0)


def test_the_segments_take_the_z_colours_the_legend_names_the_scale_and_the_toggle_restores(scene, cohort):
    model, scores = cohort
    case = model.case_result("ct_shifted")
    image, label = model.case_files("ct_shifted")
    loaded = CaseLoader(scene).load(image, label, {c.label_value: c.name for c in case.classes}, "ct_shifted")
    original = _colours(loaded.segmentation_node)
    exact = _colours(loaded.segmentation_node, digits=None)
    shown = AUVLogic.showCaseResult(loaded.segmentation_node, case, scores, "inferno", "case", "agreement")
    colours = _colours(loaded.segmentation_node)
    plan = colour_plan(case, "agreement", scores)
    for name, value in plan.values.items():
        expected = UNDEFINED_COLOR if math.isnan(value) else uncertainty_color(value / Z_RANGE[1], "inferno")
        assert colours[name] == pytest.approx(expected, abs=1e-3), name
    display = loaded.segmentation_node.GetDisplayNode()
    legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(display)
    assert legend.GetTitleText() == plan.title and tuple(display.GetScalarRange()) == Z_RANGE
    assert "robust z" in shown.summary
    coloring = UncertaintyColoring(scene)
    AUVLogic.setUncertaintyShown(loaded.segmentation_node, False, "inferno")
    assert _colours(loaded.segmentation_node) == original and not legend.GetVisibility()
    assert _colours(loaded.segmentation_node, digits=None) == exact  # restored to the bit, not to 6 decimals
    AUVLogic.setUncertaintyShown(loaded.segmentation_node, True, "inferno")
    assert _colours(loaded.segmentation_node) == colours and coloring.is_showing_uncertainty(loaded.segmentation_node)
    assert legend.GetTitleText() == plan.title
