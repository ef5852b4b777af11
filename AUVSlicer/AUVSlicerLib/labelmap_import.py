"""Turn a label map volume node into a segmentation whose segments carry their label value.

The one place the module imports label maps (a cohort case's label file, or a
label map the user picked for scoring). Each segment is tagged with the label
value it came from (:data:`LABEL_VALUE_TAG`), so the scores of that value find
it again, and named after its class where the names are known. Segments' tags
and names are what :mod:`AUVSlicerLib.uncertainty_colors` matches scores by.

Example (with the slicer-core wheel or inside Slicer):
    >>> segmentation = segmentation_from_labelmap(scene, labelmap, {1: "spleen"})   # doctest: +SKIP
    >>> segmentation.GetSegmentation().GetNthSegment(0).GetName()                   # doctest: +SKIP
    'spleen'
"""

from __future__ import annotations

from collections.abc import Mapping

import slicer

from .node_removal import remove_node_and_dependents

#: Segment tag: the class label value the segment was scored as.
LABEL_VALUE_TAG = "AUVSlicer.LabelValue"


def segmentation_from_labelmap(scene, labelmap_node, class_names: Mapping[int, str] | None = None,
                               name: str | None = None, reference_volume=None):
    """A new segmentation node holding ``labelmap_node``'s labels, tagged with their values.

    Raises:
        ValueError: when Slicer cannot import the label map (nothing is left in the scene then).
    """
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or f"{labelmap_node.GetName()} segmentation")
    segmentation.CreateDefaultDisplayNodes()
    if reference_volume is not None:
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap_node, segmentation):
        remove_node_and_dependents(scene, segmentation)
        raise ValueError(f"{labelmap_node.GetName()} could not be imported as a segmentation (an empty or unreadable label map?)")
    contents = segmentation.GetSegmentation()
    names = class_names or {}
    for index in range(contents.GetNumberOfSegments()):
        segment = contents.GetSegment(contents.GetNthSegmentID(index))
        value = int(segment.GetLabelValue())
        segment.SetTag(LABEL_VALUE_TAG, str(value))
        if value in names:
            segment.SetName(names[value])
    return segmentation
