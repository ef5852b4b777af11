"""Render a scored case, colour-coded by the module's logic, to a PNG without Slicer or a display.

The segments are loaded and coloured by AUVSlicerLib in a real MRML scene
(slicer-core wheel); their closed surfaces are rendered by VTK offscreen (EGL),
the axial slice overlays the label map in the same segment colours, and the
colour bar and bar chart are drawn from the MRML colour table and table nodes.
This makes the README figure and the extension's screenshot.

Usage::

    python AUVSlicer/Testing/Python/render_screenshot.py RESULTS_FOLDER CASE_ID OUT.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import SimpleITK as sitk
import vtk
from matplotlib.colors import ListedColormap, Normalize
from vtk.util.numpy_support import vtk_to_numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from AUVSlicerLib.case_loader import CaseLoader
from AUVSlicerLib.case_result import case_result_path, load_case_result
from AUVSlicerLib.colormap import spread_range
from AUVSlicerLib.results_table import fill_results_table
from AUVSlicerLib.uncertainty_colors import LABEL_VALUE_TAG, UncertaintyColoring
from headless import HeadlessScene


def _segments(segmentation_node):
    segmentation = segmentation_node.GetSegmentation()
    return [(segmentation.GetNthSegmentID(i), segmentation.GetSegment(segmentation.GetNthSegmentID(i)))
            for i in range(segmentation.GetNumberOfSegments())]


def render_surfaces(segmentation_node, size: tuple[int, int] = (700, 700)) -> np.ndarray:
    """The segments' closed surfaces in their current colours, seen from the front, as an RGB array."""
    if not segmentation_node.CreateClosedSurfaceRepresentation():
        raise RuntimeError(f"could not make closed surfaces of {segmentation_node.GetName()}")
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.08, 0.09, 0.12)
    for segment_id, segment in _segments(segmentation_node):
        surface = vtk.vtkPolyData()
        segmentation_node.GetClosedSurfaceRepresentation(segment_id, surface)
        if surface.GetNumberOfPoints() == 0:
            continue
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputData(surface)
        actor = vtk.vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(segment.GetColor())
        actor.GetProperty().SetSpecular(0.2)
        renderer.AddActor(actor)
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(True)
    window.SetSize(*size)
    window.AddRenderer(renderer)
    camera = renderer.GetActiveCamera()
    camera.SetPosition(0, 1, 0)  # anterior (RAS +A), looking back at the patient
    camera.SetFocalPoint(0, 0, 0)
    camera.SetViewUp(0, 0, 1)
    renderer.ResetCamera()
    camera.Zoom(1.3)
    window.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.Update()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)[::-1, :, :3]
    window.Finalize()
    return pixels


def axial_overlay(image_path: Path, label_path: Path, segmentation_node, window=(-160.0, 240.0)) -> np.ndarray:
    """The axial slice with the most labelled voxels, label voxels in their segment's colour (radiological view)."""
    image = sitk.DICOMOrient(sitk.ReadImage(str(image_path)), "LPS")  # rows anterior->posterior, columns right->left
    labels = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(label_path)), "LPS"))
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    index = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    grey = np.clip((values[index] - window[0]) / (window[1] - window[0]), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for _, segment in _segments(segmentation_node):
        text = vtk.reference("")
        if segment.GetTag(LABEL_VALUE_TAG, text):
            mask = labels[index] == int(str(text))
            rgb[mask] = 0.35 * rgb[mask] + 0.65 * np.asarray(segment.GetColor())
    return rgb


def render_case(results_folder: Path, case_id: str, output: Path) -> Path:
    """Load, colour and render ``case_id`` of an ``auv score`` results folder into ``output`` (PNG)."""
    headless = HeadlessScene()
    scene = headless.scene
    case = load_case_result(case_result_path(results_folder, case_id))
    loaded = CaseLoader(scene).load(case.image, case.label, {c.label_value: c.name for c in case.classes}, case_id)
    value_range = spread_range([c.uncertainty for c in case.scored_classes])
    UncertaintyColoring(scene).apply(loaded.segmentation_node, case, "viridis", value_range)
    table = fill_results_table(scene, case)
    color_table = loaded.segmentation_node.GetDisplayNode().GetColorNode()
    colors = np.array([color_table.GetLookupTable().GetTableValue(i)[:3] for i in range(color_table.GetNumberOfColors())])

    n_classes = len(case.scored_classes)
    figure = plt.figure(figsize=(16, max(5.6, 0.17 * n_classes + 2.0)), dpi=110, facecolor="white")
    grid = figure.add_gridspec(1, 4, width_ratios=[1, 1, 1, 0.035], wspace=0.5)
    surfaces = figure.add_subplot(grid[0])
    surfaces.imshow(render_surfaces(loaded.segmentation_node))
    surfaces.set_title("Segments coloured by U = 1 - S (3D, anterior)")
    axial = figure.add_subplot(grid[1])
    spacing = sitk.ReadImage(str(case.image)).GetSpacing()
    axial.imshow(axial_overlay(Path(case.image), Path(case.label), loaded.segmentation_node),
                 aspect=spacing[1] / spacing[0])
    axial.set_title("Axial slice (patient right on the left)")
    for axis in (surfaces, axial):
        axis.set_xticks([])
        axis.set_yticks([])
    norm = Normalize(*value_range)
    colorbar = figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=ListedColormap(colors)), cax=figure.add_subplot(grid[3]))
    colorbar.set_label("U = 1 - S (legend of the colour table node)")
    bars = figure.add_subplot(grid[2])
    rows = [(table.GetCellText(r, 0), table.GetTable().GetValueByName(r, "U").ToDouble()) for r in range(table.GetNumberOfRows())]
    rows = [(name, u) for name, u in rows if np.isfinite(u)]
    names, uncertainties = zip(*sorted(rows, key=lambda row: row[1]))
    bars.barh(names, uncertainties, color=[ListedColormap(colors)(norm(u)) for u in uncertainties])
    bars.set_xlim(value_range[0] - 0.1 * (value_range[1] - value_range[0]), value_range[1] + 0.05 * (value_range[1] - value_range[0]))
    bars.tick_params(axis="y", labelsize=7 if n_classes > 15 else 10)
    bars.set_xlabel("U = 1 - S (table node)")
    bars.set_title(f"{case_id}: per-class uncertainty, {case.backbone}")
    figure.suptitle(f"AUV Slicer: {case_id}, S = {case.S:.3f} summed over {len(case.scored_classes)} classes", fontsize=13)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, bbox_inches="tight")
    plt.close(figure)
    headless.close()
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_folder", type=Path)
    parser.add_argument("case_id")
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    print(render_case(args.results_folder, args.case_id, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
