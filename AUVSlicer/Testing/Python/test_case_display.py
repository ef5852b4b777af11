"""A scored sample case in real MRML: loading, uncertainty colours and legend, restoring, table, chart, reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from auvcore.errors import InputError
from AUVSlicerLib.case_export import export_for_scoring
from AUVSlicerLib.case_loader import CaseLoader
from AUVSlicerLib.case_result import case_result_path, load_case_result
from AUVSlicerLib.colormap import UNDEFINED_COLOR, spread_range, uncertainty_color
from AUVSlicerLib.reference_cohort import load_reference_cohort
from AUVSlicerLib.results_table import fill_results_table, uncertainty_bar_chart
from AUVSlicerLib.uncertainty_colors import (
    LABEL_VALUE_TAG,
    LEGEND_TITLE,
    UncertaintyColoring,
    match_segments,
)
from conftest import ORGANS


def _segments(segmentation_node) -> dict[str, object]:
    segmentation = segmentation_node.GetSegmentation()
    return {segmentation.GetSegment(segmentation.GetNthSegmentID(i)).GetName(): segmentation.GetSegment(segmentation.GetNthSegmentID(i))
            for i in range(segmentation.GetNumberOfSegments())}


@pytest.fixture
def loaded_case(scene, scored_cohort):
    """The ``ct_full`` case loaded from its results row, with its real scores."""
    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    loaded = CaseLoader(scene).load(case.image, case.label, {c.label_value: c.name for c in case.classes}, "ct_full")
    return case, loaded


def test_the_real_scores_cover_the_four_organs(scored_cohort):
    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    assert case.status == "ok"
    assert {c.label_value: c.name for c in case.classes} == ORGANS
    for score in case.scored_classes:
        assert 0.0 <= score.S <= 1.0 and score.uncertainty == pytest.approx(1.0 - score.S, abs=1e-6)
    assert case.S == pytest.approx(sum(c.S for c in case.scored_classes), rel=1e-6)


def test_segments_take_the_colour_of_their_real_uncertainty_and_a_legend_appears(scene, loaded_case):
    case, loaded = loaded_case
    coloring = UncertaintyColoring(scene)
    matched = coloring.apply(loaded.segmentation_node, case, "viridis")
    assert {score.name for score in matched.values()} == set(ORGANS.values())
    for name, segment in _segments(loaded.segmentation_node).items():
        score = next(c for c in case.classes if c.name == name)
        expected = uncertainty_color(score.uncertainty, "viridis") if score.scored else UNDEFINED_COLOR
        assert segment.GetColor() == pytest.approx(expected, abs=1e-4), name
    display = loaded.segmentation_node.GetDisplayNode()
    table = display.GetColorNode()
    assert table.GetNumberOfColors() == 256
    assert table.GetLookupTable().GetTableValue(0)[:3] == pytest.approx(uncertainty_color(0.0), abs=1 / 255)
    assert display.GetScalarRange() == (0.0, 1.0)
    legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(display)
    assert legend is not None and legend.GetVisibility() and legend.GetTitleText() == LEGEND_TITLE


def test_over_the_case_range_the_least_and_most_uncertain_organs_take_the_ends_of_the_map(scene, loaded_case):
    case, loaded = loaded_case
    value_range = spread_range([c.uncertainty for c in case.scored_classes])
    UncertaintyColoring(scene).apply(loaded.segmentation_node, case, "inferno", value_range)
    ordered = sorted(case.scored_classes, key=lambda c: c.uncertainty)
    segments = _segments(loaded.segmentation_node)
    assert segments[ordered[0].name].GetColor() == pytest.approx(uncertainty_color(0.0, "inferno"), abs=1e-4)
    assert segments[ordered[-1].name].GetColor() == pytest.approx(uncertainty_color(1.0, "inferno"), abs=1e-4)
    display = loaded.segmentation_node.GetDisplayNode()
    assert display.GetScalarRange() == pytest.approx(value_range)
    assert display.GetColorNode().GetColorName(0) == f"{value_range[0]:.3f}"
    # Switching back and forth keeps the range.
    coloring = UncertaintyColoring(scene)
    coloring.show_original(loaded.segmentation_node)
    coloring.show_uncertainty(loaded.segmentation_node)
    assert display.GetScalarRange() == pytest.approx(value_range)


def test_the_original_colours_are_restored_and_the_toggle_goes_both_ways(scene, loaded_case):
    case, loaded = loaded_case
    originals = {name: segment.GetColor() for name, segment in _segments(loaded.segmentation_node).items()}
    original_color_node = loaded.segmentation_node.GetDisplayNode().GetColorNodeID()
    coloring = UncertaintyColoring(scene)
    coloring.apply(loaded.segmentation_node, case)
    coloring.apply(loaded.segmentation_node, case)  # scoring again must not lose the originals
    coloring.show_original(loaded.segmentation_node)
    assert not coloring.is_showing_uncertainty(loaded.segmentation_node)
    for name, segment in _segments(loaded.segmentation_node).items():
        assert segment.GetColor() == pytest.approx(originals[name], abs=1e-5), name
    display = loaded.segmentation_node.GetDisplayNode()
    assert (display.GetColorNodeID() or None) == original_color_node
    assert not slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(display).GetVisibility()
    coloring.show_uncertainty(loaded.segmentation_node)
    liver = next(c for c in case.classes if c.name == "liver")
    assert _segments(loaded.segmentation_node)["liver"].GetColor() == pytest.approx(uncertainty_color(liver.uncertainty), abs=1e-4)


def test_showing_uncertainty_before_scoring_is_refused(scene, loaded_case):
    _, loaded = loaded_case
    with pytest.raises(ValueError, match="score it first"):
        UncertaintyColoring(scene).show_uncertainty(loaded.segmentation_node)


def test_segments_are_matched_by_name_when_their_label_value_is_unknown(scene, loaded_case):
    case, loaded = loaded_case
    for segment in _segments(loaded.segmentation_node).values():
        segment.RemoveTag(LABEL_VALUE_TAG)
        segment.SetLabelValue(200)  # a value no class has
    matched = match_segments(loaded.segmentation_node, case)
    segmentation = loaded.segmentation_node.GetSegmentation()
    assert {segmentation.GetSegment(s).GetName(): c.name for s, c in matched.items()} == {n: n for n in ORGANS.values()}


def test_the_table_holds_each_class_and_the_chart_plots_u(scene, scored_cohort):
    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    table = fill_results_table(scene, case)
    assert table.GetNumberOfRows() == len(case.classes)
    names = [table.GetCellText(row, 0) for row in range(table.GetNumberOfRows())]
    assert names == [c.name for c in case.classes]
    for row, score in enumerate(case.classes):
        assert table.GetTable().GetValueByName(row, "S").ToDouble() == pytest.approx(score.S, nan_ok=True)
        assert table.GetTable().GetValueByName(row, "U").ToDouble() == pytest.approx(score.uncertainty, nan_ok=True)
        assert int(table.GetTable().GetValueByName(row, "Label value").ToInt()) == score.label_value
    for row, score in enumerate(case.classes):
        for scorer in ("agreement", "consistency"):
            value = table.GetTable().GetValueByName(row, scorer).ToDouble()
            assert value == pytest.approx(case.scores[scorer][score.name], nan_ok=True)
    # Where the class's worst agreement slice lies, as the RAS S of a slice of the CT.
    worst = [table.GetTable().GetValueByName(row, "Worst agreement slice (RAS S, mm)").ToDouble() for row in range(len(case.classes))]
    centres_s = {round(point[2], 3) for point in case.record.slice_centres_lps}
    assert all(round(value, 3) in centres_s for value in worst if not math.isnan(value))
    assert sum(not math.isnan(value) for value in worst) == len(case.scored_classes)
    chart = uncertainty_bar_chart(scene, case)
    assert chart.GetNumberOfPlotSeriesNodes() == 1
    series = chart.GetNthPlotSeriesNode(0)
    assert series.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeScatterBar
    assert series.GetYColumnName() == "U" and series.GetLabelColumnName() == "Class"
    data = series.GetTableNode()
    assert data.GetNumberOfRows() == len(case.scored_classes)
    # Filling again reuses the nodes instead of piling up new ones.
    fill_results_table(scene, case)
    uncertainty_bar_chart(scene, case)
    assert scene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode") == 1


def test_the_case_is_placed_on_the_reference_cohort_scale(scored_cohort):
    cohort = load_reference_cohort(scored_cohort / "reference.json")
    assert cohort.saved.scale.n_cases == 3 and len(cohort.cohort_auvs) == 3
    cases = {c: load_case_result(case_result_path(scored_cohort, c)) for c in ("ct_full", "ct_fast", "ct_shifted")}
    for case in cases.values():
        placement = cohort.place(case.S, case.backbone, case.mode, case.record.settings)
        assert placement.auv == pytest.approx(case.auv, abs=1e-9)
    hardest = max(cases.values(), key=lambda c: c.auv)
    placement = cohort.place(hardest.S, hardest.backbone, hardest.mode, hardest.record.settings)
    assert placement.harder_than == pytest.approx(2 / 3) and "harder than 67%" in placement.describe()
    with pytest.raises(InputError, match="backbone 'medsam2'"):
        cohort.place(hardest.S, "medsam2", "classwise")
    other_window = {**hardest.record.settings, "ct_window": [-1000.0, 1000.0]}
    with pytest.raises(InputError, match="setting ct_window"):
        cohort.place(hardest.S, hardest.backbone, hardest.mode, other_window)


def test_a_broken_reference_or_case_file_names_the_file(tmp_path):
    broken = tmp_path / "reference.json"
    broken.write_text(json.dumps({"a_min": 0.1}))
    with pytest.raises(InputError, match="reference.json"):
        load_reference_cohort(broken)
    truncated = tmp_path / "case.json"
    truncated.write_text('{"case_id": "c", "classes": [')
    with pytest.raises(InputError, match="case.json"):
        load_case_result(truncated)


def test_loading_another_case_unloads_the_previous_one(scene, scored_cohort):
    loader = CaseLoader(scene)
    full = load_case_result(case_result_path(scored_cohort, "ct_full"))
    first = loader.load(full.image, full.label, ORGANS, "ct_full")
    nodes_with_one_case = scene.GetNumberOfNodes()
    fast = load_case_result(case_result_path(scored_cohort, "ct_fast"))
    second = loader.load(fast.image, fast.label, ORGANS, "ct_fast")
    assert first.volume_node.GetScene() is None and first.segmentation_node.GetScene() is None
    assert scene.GetNumberOfNodes() == nodes_with_one_case
    assert set(_segments(second.segmentation_node)) == set(ORGANS.values())
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(second.volume_node),
                                  sitk.GetArrayFromImage(sitk.ReadImage(fast.image)))

    loader.unload()
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 0
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0


def test_a_missing_image_is_reported_with_its_path(scene, tmp_path):
    with pytest.raises(InputError, match="nope.nii.gz"):
        CaseLoader(scene).load(tmp_path / "nope.nii.gz", tmp_path / "nope_label.nii.gz")
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 0


def test_export_for_scoring_writes_the_same_label_values_and_names_new_segments(scene, sample_manifest, tmp_path):
    folder = sample_manifest.parent
    loaded = CaseLoader(scene).load(folder / "example_ct_sm.nii.gz", folder / "example_seg_fast.nii.gz",
                                    {1: "spleen", 5: "liver"}, "ct_fast")
    inputs = export_for_scoring(scene, loaded.volume_node, loaded.segmentation_node, tmp_path)
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg_fast.nii.gz")))
    exported = sitk.GetArrayFromImage(sitk.ReadImage(str(inputs.label)))
    np.testing.assert_array_equal(exported, original)
    image = sitk.ReadImage(str(inputs.image))
    reference = sitk.ReadImage(str(folder / "example_ct_sm.nii.gz"))
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
    labels = json.loads(inputs.label_names.read_text())["labels"]
    assert labels["liver"] == 5 and labels["spleen"] == 1 and labels["background"] == 0

    # A segment drawn by the user gets the next free value and keeps it on the next export.
    segmentation = loaded.segmentation_node.GetSegmentation()
    new_id = segmentation.AddEmptySegment("", "lesion")
    again = export_for_scoring(scene, loaded.volume_node, loaded.segmentation_node, tmp_path / "again")
    assert again.label_values[new_id] == int(original.max()) + 1
    assert json.loads(again.label_names.read_text())["labels"]["lesion"] == int(original.max()) + 1
    assert not list(tmp_path.rglob(".tmp-*"))


def test_duplicate_segment_names_are_refused_before_writing(scene, sample_manifest, tmp_path):
    folder = sample_manifest.parent
    loaded = CaseLoader(scene).load(folder / "example_ct_sm.nii.gz", folder / "example_seg_roi_subset.nii.gz",
                                    {}, "roi")
    segmentation = loaded.segmentation_node.GetSegmentation()
    name = segmentation.GetSegment(segmentation.GetNthSegmentID(0)).GetName()
    segmentation.AddEmptySegment("", name)
    with pytest.raises(ValueError, match="same name"):
        export_for_scoring(scene, loaded.volume_node, loaded.segmentation_node, tmp_path)
    assert not list(tmp_path.iterdir()), "nothing is written for a segmentation that cannot be scored"


def test_the_screenshots_render_the_colours_and_the_review_queue_from_real_scores(scored_cohort, tmp_path):
    """The README pictures' renderer (VTK offscreen + the MRML colour nodes, the real queue) on the real scores."""
    from PIL import Image
    from render_screenshot import render_case, render_review

    picture = render_case(scored_cohort, "ct_shifted", "agreement", tmp_path / "colours.png")
    pixels = np.asarray(Image.open(picture).convert("RGB")).reshape(-1, 3).astype(int)
    assert len(pixels) > 500_000
    for end in (0.0, 1.0):  # the typical organs (z 0) and the shifted liver (z 3+) in the map's end colours
        colour = np.round(np.asarray(uncertainty_color(end)) * 255).astype(int)
        assert (np.abs(pixels - colour).max(axis=1) <= 2).sum() > 500, f"no pixels of z-position {end}"
    review = render_review(scored_cohort, "agreement", tmp_path / "review.png")
    assert Image.open(review).size[0] > 1000
    assert not (scored_cohort / "review.json").exists(), "the picture's verdicts go to a copy"
