"""Write the loaded volume and its segmentation (or label map) to files ``auv score`` reads.

A segmentation is written as a label map on the volume's grid. Each segment
keeps the label value it was loaded with (its tag, else its own value in a
single label layer); the others get the next free values. The value used is
tagged on the segment so the scores come back to the right segment.

Example (with the slicer-core wheel or inside Slicer):
    >>> inputs = export_for_scoring(scene, volume, segmentation, "/tmp/auv-case")  # doctest: +SKIP
    >>> inputs.image.name, inputs.label.name                                        # doctest: +SKIP
    ('image.nii.gz', 'label.nii.gz')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import slicer
import vtk
from auvcore.files import atomic_writer, write_json_atomic

from .labelmap_import import LABEL_VALUE_TAG
from .node_removal import remove_node_and_dependents
from .uncertainty_colors import segment_label_value


@dataclass(frozen=True)
class ScoringInputs:
    """The files to score; ``label_names`` (dataset.json style) exists for a segmentation input."""

    image: Path
    label: Path
    label_names: Path | None
    label_values: dict[str, int]  # segment ID -> label value; empty for a label map input


def _write_volume(scene, node, path: Path) -> None:
    """Write a volume node to ``path`` atomically (temporary file beside it, then rename)."""
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    try:
        with atomic_writer(path, suffix="".join(path.suffixes)) as temporary:  # the writer goes by the extension
            storage.SetFileName(str(temporary))
            storage.SetUseCompression(True)
            if not storage.WriteData(node):
                raise OSError(f"{path}: could not write {node.GetName()}")
    finally:
        scene.RemoveNode(storage)


def assign_label_values(segmentation_node) -> dict[str, int]:
    """Segment ID -> label value: the value each segment stands for, new values where unknown or taken."""
    segmentation = segmentation_node.GetSegmentation()
    segment_ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    values: dict[str, int] = {}
    for segment_id in segment_ids:
        value = segment_label_value(segmentation, segment_id)
        if value is not None and value > 0 and value not in values.values():
            values[segment_id] = value
    next_value = max(values.values(), default=0) + 1
    for segment_id in segment_ids:
        if segment_id not in values:
            values[segment_id] = next_value
            next_value += 1
    return values


def export_segments_to_labelmap(scene, segmentation_node, reference_node, values: dict[str, int]):
    """A new label map node on ``reference_node``'s grid holding each segment of ``values`` at its value.

    The caller removes it (:func:`~AUVSlicerLib.node_removal.remove_node_and_dependents`); the export's
    colour table is removed here.
    """
    names = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "AUV export values")
    names.SetTypeToUser()
    names.SetNumberOfColors(max(values.values()) + 1)
    segmentation = segmentation_node.GetSegmentation()
    # Export places each segment at the table entry whose name is the segment's name.
    for segment_id, value in values.items():
        names.SetColor(value, segmentation.GetSegment(segment_id).GetName(), 1.0, 1.0, 1.0, 1.0)
    segment_ids = vtk.vtkStringArray()
    for segment_id in values:
        segment_ids.InsertNextValue(segment_id)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "AUV export label")
    # The export adds a "<segmentation>_ColorTable" node to the scene unless the label map already shows a
    # user colour table (vtkSlicerSegmentationsModuleLogic::ExportSegmentsToLabelmapNode): give it ours.
    labelmap.CreateDefaultDisplayNodes()
    labelmap.GetDisplayNode().SetAndObserveColorNodeID(names.GetID())
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, segment_ids, labelmap, reference_node, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,
            names)
    finally:
        scene.RemoveNode(names)
    if not ok:
        remove_node_and_dependents(scene, labelmap)
        raise RuntimeError(f"could not export {segmentation_node.GetName()} to a label map")
    return labelmap


def export_for_scoring(scene, volume_node, label_node, folder: str | Path) -> ScoringInputs:
    """Write ``image.nii.gz`` and ``label.nii.gz`` into ``folder`` from the chosen nodes.

    ``label_node`` is a segmentation node or a label map volume node. For a
    segmentation, ``labels.json`` names the classes after the segments.
    """
    is_labelmap = label_node.IsA("vtkMRMLLabelMapVolumeNode")
    if not is_labelmap:
        check_segment_names(label_node)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image, label = folder / "image.nii.gz", folder / "label.nii.gz"
    _write_volume(scene, volume_node, image)
    if is_labelmap:
        _write_volume(scene, label_node, label)
        return ScoringInputs(image, label, None, {})
    segmentation = label_node.GetSegmentation()
    values = assign_label_values(label_node)
    labelmap = export_segments_to_labelmap(scene, label_node, volume_node, values)
    try:
        _write_volume(scene, labelmap, label)
    finally:
        remove_node_and_dependents(scene, labelmap)
    for segment_id, value in values.items():
        segmentation.GetSegment(segment_id).SetTag(LABEL_VALUE_TAG, str(value))
    label_names = folder / "labels.json"
    labels = {"background": 0, **{segmentation.GetSegment(s).GetName(): v for s, v in values.items()}}
    write_json_atomic(label_names, {"labels": labels})
    return ScoringInputs(image, label, label_names, values)


def check_segment_names(segmentation_node) -> None:
    """Each class is named after its segment, so the names must be there and distinct."""
    segmentation = segmentation_node.GetSegmentation()
    names = [segmentation.GetSegment(segmentation.GetNthSegmentID(i)).GetName()
             for i in range(segmentation.GetNumberOfSegments())]
    if not names:
        raise ValueError(f"{segmentation_node.GetName()} has no segments to score")
    if len(set(names)) != len(names):
        raise ValueError(f"{segmentation_node.GetName()} has segments with the same name; rename them so each class is distinct")
