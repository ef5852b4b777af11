"""Render the module's colouring and its review queue from real scores to PNGs, without Slicer or a display.

The segments are loaded and coloured by AUVSlicerLib in a real MRML scene
(slicer-core wheel) against the results folder's own cases as the reference
cohort; their closed surfaces are rendered by VTK offscreen (EGL), the axial
slice overlays the label map in the same segment colours, and the colour bar
and bar chart are drawn from the MRML colour table and the plan's values. The
review picture is the queue the module builds, three verdicts recorded by the
real review file, and the axial slice the views jump to for the first structure.
These make the README figures and the extension's screenshots.

Usage::

    python AUVSlicer/Testing/Python/render_screenshot.py RESULTS_FOLDER CASE_ID SCORE OUT_COLOURS.png OUT_REVIEW.png
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

import shutil
import tempfile

from AUVSlicerLib.case_loader import CaseLoader
from auvcore.review.case_scores import case_result_path, load_case_result
from auvcore.review.queue_table import review_table_content
from AUVSlicerLib.logic import AUVLogic
from auvcore.review.colour_plan import colour_plan
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


def axial_overlay(image_path: Path, label_path: Path, segmentation_node, window=(-160.0, 240.0),
                  lps_point=None, dimmed: float = 1.0) -> np.ndarray:
    """An axial slice, label voxels in their segment's colour (radiological view): the slice through ``lps_point``,
    else the one with the most labelled voxels; segments other than the selected one are ``dimmed``."""
    image = sitk.DICOMOrient(sitk.ReadImage(str(image_path)), "LPS")  # rows anterior->posterior, columns right->left
    labels = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(label_path)), "LPS"))
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    if lps_point is None:
        index = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    else:
        index = image.TransformPhysicalPointToIndex(lps_point)[2]
    grey = np.clip((values[index] - window[0]) / (window[1] - window[0]), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    display = segmentation_node.GetDisplayNode()
    for segment_id, segment in _segments(segmentation_node):
        text = vtk.reference("")
        if segment.GetTag(LABEL_VALUE_TAG, text):
            mask = labels[index] == int(str(text))
            weight = 0.65 * (display.GetSegmentOpacity2DFill(segment_id) if dimmed < 1.0 else 1.0)
            rgb[mask] = (1 - weight) * rgb[mask] + weight * np.asarray(segment.GetColor())
    return rgb


def render_case(results_folder: Path, case_id: str, score: str, output: Path) -> Path:
    """Load ``case_id`` of an ``auv score`` results folder, colour it by ``score`` against the folder's cases
    as the reference cohort (what the module's cohort browser does) and render it into ``output`` (PNG)."""
    headless = HeadlessScene()
    scene = headless.scene
    logic = AUVLogic()
    cohort = logic.openCohort(str(results_folder))
    case = load_case_result(case_result_path(results_folder, case_id))
    loaded = CaseLoader(scene).load(case.image, case.label, {c.label_value: c.name for c in case.classes}, case_id)
    reference = logic.cohortScores(cohort)
    plan = colour_plan(case, score, reference)
    UncertaintyColoring(scene).apply(loaded.segmentation_node, case, "viridis", plan.value_range, plan.values, plan.title)
    color_table = loaded.segmentation_node.GetDisplayNode().GetColorNode()
    colors = np.array([color_table.GetLookupTable().GetTableValue(i)[:3] for i in range(color_table.GetNumberOfColors())])

    figure = plt.figure(figsize=(16, 5.6), dpi=110, facecolor="white")
    grid = figure.add_gridspec(1, 4, width_ratios=[1, 1, 1, 0.035], wspace=0.5)
    surfaces = figure.add_subplot(grid[0])
    surfaces.imshow(render_surfaces(loaded.segmentation_node))
    surfaces.set_title("Segments in their colours (3D, anterior)")
    axial = figure.add_subplot(grid[1])
    spacing = sitk.ReadImage(str(case.image)).GetSpacing()
    axial.imshow(axial_overlay(Path(case.image), Path(case.label), loaded.segmentation_node),
                 aspect=spacing[1] / spacing[0])
    axial.set_title("Axial slice (patient right on the left)")
    for axis in (surfaces, axial):
        axis.set_xticks([])
        axis.set_yticks([])
    norm = Normalize(*plan.value_range)
    colorbar = figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=ListedColormap(colors)), cax=figure.add_subplot(grid[3]))
    colorbar.set_label("robust z within the structure (3 = 3 or more)" if plan.relative else "case range")
    bars = figure.add_subplot(grid[2])
    rows = sorted(((name, v) for name, v in plan.values.items() if np.isfinite(v)), key=lambda row: row[1])
    names, shown = zip(*rows)
    dot_colours = [ListedColormap(colors)(norm(v)) for v in shown]
    bars.hlines(names, plan.value_range[0], shown, color=dot_colours, linewidth=3)
    bars.scatter(shown, names, s=260, color=dot_colours, edgecolors="black", zorder=3)
    span = plan.value_range[1] - plan.value_range[0]
    bars.set_xlim(plan.value_range[0] - 0.05 * span, plan.value_range[1] + 0.05 * span)
    bars.set_xlabel("robust z of " + score + " within each structure" if plan.relative else score)
    bars.set_title(f"{case_id}: each structure against {len(reference.cases)} cases")
    figure.suptitle(f"AUV Slicer: {case_id} coloured by {plan.title}", fontsize=11)
    _save(figure, output)
    headless.close()
    return output


def render_review(results_folder: Path, score: str, output: Path) -> Path:
    """The review queue of a results folder by ``score`` with three verdicts recorded, beside the slice the views
    jump to for its first structure (the copy's ``review.json`` is written by the real review file)."""
    headless = HeadlessScene()
    work = Path(tempfile.mkdtemp(prefix="auv-review-")) / "scores"
    shutil.copytree(results_folder, work)
    logic = AUVLogic()
    cohort = logic.openCohort(str(work))
    queue = logic.openReview(cohort, score)
    first = queue.current
    shown = logic.showQueueEntry(cohort, first, score=score)
    case = cohort.case_result(first.case_id)
    lps = (-shown.ras[0], -shown.ras[1], shown.ras[2])
    slice_rgb = axial_overlay(Path(case.image), Path(case.label), shown.loaded.segmentation_node, lps_point=lps,
                              dimmed=0.15)
    queue.record("needs_fix", note="liver 3 slices too high")
    queue.next()
    queue.record("correct")
    queue.next()
    queue.record("unsure", note="faint boundary")
    queue.next()
    content = review_table_content(queue)

    figure = plt.figure(figsize=(16, 6.2), dpi=110, facecolor="white")
    grid = figure.add_gridspec(1, 2, width_ratios=[1.9, 1], wspace=0.05)
    table_axis = figure.add_subplot(grid[0])
    table_axis.axis("off")
    cells = [["" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in content.rows]
    table = table_axis.table(cellText=cells, colLabels=content.columns, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.45)
    table.auto_set_column_width(list(range(len(content.columns))))
    for (row, _), cell in table.get_celld().items():
        if row > 0 and content.colors[row - 1]:
            cell.get_text().set_color(content.colors[row - 1])
        if row == queue.position + 1:
            cell.set_facecolor("#e8eefc")
    table_axis.set_title(f"Review queue by {score}, most suspect first: {content.summary} "
                         "(N/P move, U next without verdict, 1/2/3 correct/needs fix/unsure)", fontsize=10)
    axial = figure.add_subplot(grid[1])
    spacing = sitk.ReadImage(str(case.image)).GetSpacing()
    axial.imshow(slice_rgb, aspect=spacing[1] / spacing[0])
    axial.set_xticks([])
    axial.set_yticks([])
    axial.set_title(f"#1 {first.case_id} / {first.structure}: views at its\n{shown.where}", fontsize=10)
    figure.suptitle("AUV Slicer annotation review: verdicts go to review.json beside exclusions.json", fontsize=12)
    _save(figure, output)
    headless.close()
    shutil.rmtree(work.parent)
    return output


def _save(figure, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, bbox_inches="tight")
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_folder", type=Path)
    parser.add_argument("case_id")
    parser.add_argument("score")
    parser.add_argument("colours_output", type=Path)
    parser.add_argument("review_output", type=Path)
    args = parser.parse_args(argv)
    print(render_case(args.results_folder, args.case_id, args.score, args.colours_output))
    print(render_review(args.results_folder, args.score, args.review_output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
