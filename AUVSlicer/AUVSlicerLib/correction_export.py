"""A reviewer's edited segmentation as a label map on its source label's grid, with the source's values and header.

The export is the one Slicer itself uses, ``vtkSlicerSegmentationsModuleLogic::ExportSegmentsToLabelmapNode``,
onto the source label file read as the reference geometry
(:func:`~AUVSlicerLib.case_export.export_segments_to_labelmap`). Every segment goes
to the label value it was loaded with (its ``AUVSlicer.LabelValue`` tag), so
structures the reviewer did not touch keep their values and voxels; a segment
added in the Segment Editor takes the value of the case's class it is named
after. The voxels become a SimpleITK image with the header the source file has
(origin, spacing, direction as SimpleITK reads them), after checking that Slicer
read the same grid, so :func:`auvcore.results.save_correction` gets the source's
grid exactly. No node is left in the scene.

Example (with the slicer-core wheel or inside Slicer):
    >>> values = segment_values(segmentation, {5: "liver"})                         # doctest: +SKIP
    >>> image = corrected_label_image(scene, segmentation, "labels/ct_7.nii.gz", values)   # doctest: +SKIP
    >>> save_correction(ResultsFolder("out"), "ct_7", image, source="labels/ct_7.nii.gz")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from auvcore.errors import InputError
from auvcore.imaging import Geometry
from auvcore.results.corrections import GRID_TOLERANCE

from .case_export import check_segment_names, export_segments_to_labelmap
from .case_loader import read_volume_node
from .node_removal import remove_node_and_dependents
from .uncertainty_colors import segment_label_value

#: LPS (ITK, SimpleITK) to RAS (Slicer): x and y change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def segment_values(segmentation_node, class_names: Mapping[int, str]) -> dict[str, int]:
    """Segment ID -> the label value it is saved as: the value it was loaded with, else that of the case's class
    it is named after (``class_names``: label value -> class name).

    Raises:
        ValueError: naming the segment, for one that stands for no class, or two that stand for one value.
    """
    check_segment_names(segmentation_node)
    segmentation = segmentation_node.GetSegmentation()
    by_name = {name: value for value, name in class_names.items()}
    values: dict[str, int] = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        name = segmentation.GetSegment(segment_id).GetName()
        value = segment_label_value(segmentation, segment_id)
        if value is None:
            value = by_name.get(name)
        if value is None:
            raise ValueError(f"segment {name!r} of {segmentation_node.GetName()} stands for no class of the case: name it "
                             f"after one of {sorted(by_name)} or remove it")
        same = next((other for other, taken in values.items() if taken == value), None)
        if same is not None:
            raise ValueError(f"segments {segmentation.GetSegment(same).GetName()!r} and {name!r} of "
                             f"{segmentation_node.GetName()} both stand for label value {value}: remove one")
        values[segment_id] = value
    return values


def _ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def _check_same_grid(ijk_to_ras: np.ndarray, header: Geometry, shape: tuple[int, ...], source: Path) -> None:
    """Slicer's and SimpleITK's reading of ``source`` must be one grid, with voxels in one order."""
    direction = np.array(header.direction).reshape(3, 3)
    expected = np.eye(4)
    expected[:3, :3] = LPS_TO_RAS @ direction @ np.diag(header.spacing)
    expected[:3, 3] = LPS_TO_RAS @ np.array(header.origin)
    if tuple(reversed(shape)) != tuple(header.size) or not np.allclose(
            ijk_to_ras, expected, atol=GRID_TOLERANCE, rtol=GRID_TOLERANCE):
        raise InputError(source, f"is read by Slicer on another grid (size {tuple(reversed(shape))}, IJK to RAS "
                         f"{np.round(ijk_to_ras, 4).tolist()}) than by SimpleITK (size {header.size}, "
                         f"{np.round(expected, 4).tolist()}): a correction cannot be placed on it")


def corrected_label_image(scene, segmentation_node, source_label: str | Path, values: Mapping[str, int]) -> sitk.Image:
    """The segments of ``values`` as one label map on ``source_label``'s grid, with its header."""
    source = Path(source_label)
    header = Geometry.of_file(source)
    reference = read_volume_node(scene, "vtkMRMLLabelMapVolumeNode", source, "AUV correction reference")
    try:
        ijk_to_ras = _ijk_to_ras(reference)
        shape = tuple(reversed(reference.GetImageData().GetDimensions()))
        if values:
            labelmap = export_segments_to_labelmap(scene, segmentation_node, reference, dict(values))
            try:
                voxels = np.array(slicer.util.arrayFromVolume(labelmap), copy=True)
                ijk_to_ras = _ijk_to_ras(labelmap)
            finally:
                remove_node_and_dependents(scene, labelmap)
        else:  # every segment was removed: nothing is labelled any more
            voxels = np.zeros(shape, np.uint8)
    finally:
        remove_node_and_dependents(scene, reference)
    _check_same_grid(ijk_to_ras, header, voxels.shape, source)
    image = sitk.GetImageFromArray(voxels)
    image.SetOrigin(header.origin)
    image.SetSpacing(header.spacing)
    image.SetDirection(header.direction)
    return image
