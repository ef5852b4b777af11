"""Open a structure in Slicer's Segment Editor: its parameter node set to the case's segmentation, volume and segment.

Slicer's Segment Editor module keeps what it edits in one singleton
``vtkMRMLSegmentEditorNode`` (tag ``SegmentEditor``), which its widget reads
when the module is entered (``Modules/Scripted/SegmentEditor/SegmentEditor.py``:
``selectParameterNode`` then ``updateWidgetFromMRML``, v5.10.0 and v5.12.3). The
widget's own ``setSegmentationNode``, ``setSourceVolumeNode`` and
``setCurrentSegmentID`` only forward to ``vtkSlicerSegmentEditorLogic``, whose
setters write that node (``SetAndObserveSegmentationNode``,
``SetAndObserveSourceVolumeNode``, ``SetSelectedSegmentID``: "Source" in both
tags, the older "Master" names being deprecated aliases). So writing the node,
then selecting the module, is what the module's own selectors do, and needs no
widget.

Order matters: the logic sets a source volume only once the segmentation is set,
and the widget, when it sees a new segmentation, selects the segmentation's
reference geometry volume as source (``qMRMLSegmentEditorWidget::updateWidgetFromSegmentationNode``);
so the segmentation comes first, and :func:`edit_in_segment_editor` refuses a
segmentation whose reference volume is another one (the module's case loader
makes it the case's volume).

Example (slicer-core's real MRML; inside Slicer the Segmentations module registers the node class):
    >>> import slicer
    >>> scene = slicer.vtkMRMLScene()
    >>> segmentations = slicer.vtkSlicerSegmentationsModuleLogic(); segmentations.SetMRMLScene(scene)
    >>> segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    >>> liver = segmentation.GetSegmentation().AddEmptySegment("liver_id", "liver")
    >>> node = edit_in_segment_editor(scene, segmentation, None, "liver_id")
    >>> node is segment_editor_node(scene), node.GetSelectedSegmentID()
    (True, 'liver_id')
    >>> segmentations.SetMRMLScene(None)
"""

from __future__ import annotations

import slicer

#: The Segment Editor module's name (``slicer.util.selectModule``) and its parameter node's singleton tag.
SEGMENT_EDITOR_MODULE = "SegmentEditor"
SEGMENT_EDITOR_SINGLETON_TAG = "SegmentEditor"


def segment_editor_node(scene):
    """The Segment Editor's parameter node, created as that module creates it when it is missing."""
    node = scene.GetSingletonNode(SEGMENT_EDITOR_SINGLETON_TAG, "vtkMRMLSegmentEditorNode")
    if node is None:
        node = scene.CreateNodeByClass("vtkMRMLSegmentEditorNode")
        if node is None:
            raise RuntimeError("the scene cannot create a vtkMRMLSegmentEditorNode: the Segmentations module is not loaded")
        node.UnRegister(None)  # as SegmentEditor.py does: CreateNodeByClass returns a reference the scene then holds
        node.SetSingletonTag(SEGMENT_EDITOR_SINGLETON_TAG)
        node = scene.AddNode(node)
    return node


def edit_in_segment_editor(scene, segmentation_node, volume_node, segment_id: str):
    """Set the Segment Editor to edit ``segment_id`` of ``segmentation_node`` on ``volume_node``; returns its node.

    Raises:
        ValueError: when the segmentation has no such segment, or its geometry comes from another volume
            (the Segment Editor would then switch to that volume).
    """
    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise ValueError(f"{segmentation_node.GetName()} has no segment {segment_id!r}")
    reference = segmentation_node.GetNodeReference(slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole())
    if volume_node is not None and reference is not None and reference is not volume_node:
        raise ValueError(f"{segmentation_node.GetName()} takes its geometry from {reference.GetName()}, not from "
                         f"{volume_node.GetName()}: the Segment Editor would edit it on {reference.GetName()}")
    node = segment_editor_node(scene)
    node.SetAndObserveSegmentationNode(segmentation_node)
    node.SetAndObserveSourceVolumeNode(volume_node)
    node.SetSelectedSegmentID(segment_id)
    return node
