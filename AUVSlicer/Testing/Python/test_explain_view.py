"""The Explain action in real MRML: the energy spectrum plot and the mask-logit layer from a real ``auv score``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from auvcore.errors import InputError
from auvcore.explain.cache import features_path
from AUVSlicerLib.explain_view import LOGIT_LEGEND_TITLE, NO_LOGIT, ExplainView
from headless import plot_view_x
from vtk.util import numpy_support

#: Six slices of the sample CT with two of its organs: real scores in seconds.
COUNT = 6
SLICES = slice(12, 12 + COUNT)
ORGANS = {1: "spleen", 5: "liver"}


@pytest.fixture(scope="module")
def scored_crop(sample_manifest: Path, tmp_path_factory) -> Path:
    """The real ``auv score`` of a crop of the sample CT: OUT/cases/crop.json and its feature cache."""
    folder = tmp_path_factory.mktemp("explain")
    source = sample_manifest.parent
    image = sitk.ReadImage(str(source / "example_ct_sm.nii.gz"))[:, :, SLICES]
    labels = sitk.ReadImage(str(source / "example_seg.nii.gz"))[:, :, SLICES]
    values = sitk.GetArrayFromImage(labels)
    kept = sitk.GetImageFromArray(np.where(np.isin(values, list(ORGANS)), values, 0).astype(values.dtype))
    kept.CopyInformation(labels)
    sitk.WriteImage(image, str(folder / "crop.nii.gz"))
    sitk.WriteImage(kept, str(folder / "crop_seg.nii.gz"))
    (folder / "labels.json").write_text(json.dumps({"labels": {name: value for value, name in ORGANS.items()}}))
    out = folder / "scores"
    command = [sys.executable, "-m", "auvcore.cli", "score", str(folder / "crop.nii.gz"), "--label", str(folder / "crop_seg.nii.gz"),
               "--label-names", str(folder / "labels.json"), "--case-id", "crop", "--out", str(out), "--device", "cpu", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "cases" / "crop.json"


def _column(table_node, name: str) -> np.ndarray:
    return numpy_support.vtk_to_numpy(table_node.GetTable().GetColumnByName(name))


def test_the_spectrum_plot_holds_the_distribution_s_is_the_entropy_of(scene, scored_crop):
    nodes = ExplainView(scene).show(scored_crop, "liver")
    record = json.loads(scored_crop.read_text())
    liver = next(c for c in record["classes"] if c["name"] == "liver")
    p = _column(nodes.table, "share of energy p_j")
    assert p.size == liver["rows"] == COUNT and math.isclose(p.sum(), 1.0, rel_tol=1e-9)
    assert np.all(np.diff(p) <= 0)  # largest first
    entropy = -np.sum(p[p > 0] * np.log(p[p > 0]))
    assert math.isclose(entropy / math.log(COUNT), liver["S"], rel_tol=1e-6)  # the stored S, from the same p
    assert nodes.chart.GetTitle() == f"liver: energy spectrum of z_c (S = {liver['S']:.4f}, U = {1 - liver['S']:.4f})"
    assert nodes.chart.GetLegendVisibility() and nodes.chart.GetYAxisLogScale()
    assert nodes.chart.GetNumberOfPlotSeriesNodes() == 2


def test_defect_2_the_spectrum_is_drawn_at_j_from_1_as_its_axis_says(scene, scored_crop):
    """Slicer's plot view puts Bar and Line series at 0, 1, 2 ... (issue 26): the x axis promises j = 1 .. n_c."""
    nodes = ExplainView(scene).show(scored_crop, "liver")
    j = [float(value) for value in range(1, COUNT + 1)]
    assert plot_view_x(nodes.spectrum) == j and plot_view_x(nodes.uniform) == j
    assert nodes.spectrum.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeScatterBar


def test_the_logit_layer_lies_on_the_image_and_has_a_legend(scene, scored_crop):
    nodes = ExplainView(scene).show(scored_crop, "spleen")
    volume = nodes.logits
    values = numpy_support.vtk_to_numpy(volume.GetImageData().GetPointData().GetScalars()).reshape(
        volume.GetImageData().GetDimensions()[::-1])
    shown = values[values > NO_LOGIT]
    assert shown.min() < 0 < shown.max()  # the model's mask border lies inside the layer
    # The layer covers the same physical extent as the image: compare the RAS bounds with the cropped CT's.
    image = sitk.DICOMOrient(sitk.ReadImage(str(Path(json.loads(scored_crop.read_text())["image"]))), "LPS")
    corners = [image.TransformContinuousIndexToPhysicalPoint(index) for index in
               ((-0.5, -0.5, 0), (image.GetWidth() - 0.5, image.GetHeight() - 0.5, 0))]
    expected = sorted((-corners[0][0], -corners[1][0])), sorted((-corners[0][1], -corners[1][1]))
    bounds = [0.0] * 6
    volume.GetRASBounds(bounds)
    assert np.allclose(bounds[0:2], expected[0], atol=1e-3) and np.allclose(bounds[2:4], expected[1], atol=1e-3)
    display = volume.GetDisplayNode()
    assert display.GetApplyThreshold() and display.GetLowerThreshold() > NO_LOGIT
    assert math.isclose(display.GetWindowLevelMin(), -nodes.limit) and math.isclose(display.GetWindowLevelMax(), nodes.limit)
    legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(display)
    assert legend is not None and legend.GetVisibility() and legend.GetTitleText() == LOGIT_LEGEND_TITLE


def test_a_second_explain_replaces_the_first(scene, scored_crop):
    view = ExplainView(scene)
    first = view.show(scored_crop, "spleen")
    view.show(scored_crop, "liver")
    assert first.chart.GetScene() is None and first.logits.GetScene() is None
    assert scene.GetNodesByClass("vtkMRMLPlotChartNode").GetNumberOfItems() == 1


def test_missing_class_and_missing_cache_are_named(scene, scored_crop, tmp_path):
    with pytest.raises(InputError, match="has no class 'kidney'; its classes are: liver, spleen"):
        ExplainView(scene).show(scored_crop, "kidney")
    copy = tmp_path / "crop.json"
    copy.write_text(scored_crop.read_text())
    with pytest.raises(InputError, match=f"{features_path(copy).name}: holds no features of 'liver'"):
        ExplainView(scene).show(copy, "liver")
