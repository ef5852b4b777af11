"""The review's proposal: where the label and the model disagree on a structure, shown as an overlay, and the
model's outline of it put into the case's segmentation to edit.

Both come from what ``auv score`` stored when the label-independent probe ran (``--scorers all``, or
``probe_agreement``): :func:`auvcore.results.proposals.disagreement_map` and
:func:`~auvcore.results.proposals.proposed_label`, on the scored label's grid. The overlay is a segmentation
node of its own over the case, with two segments: ``<structure>: label only`` (magenta; the voxels a proposal
removes) and ``<structure>: model only`` (cyan; the voxels it adds). One overlay exists at a time: showing
another, or :meth:`ProposalView.clear`, removes the previous one with its display and storage nodes. Accepting
a proposal is the core's :func:`~auvcore.results.proposals.accept_proposal` (the logic calls it).

No Qt here: the review panel drives it through the logic.

Example (with the slicer-core wheel or inside Slicer):
    >>> view = ProposalView(scene)                                                     # doctest: +SKIP
    >>> overlay = view.show(ResultsFolder(Path("results")), "ct_7", "liver", volume)    # doctest: +SKIP
    >>> overlay.label_only, overlay.model_only                                         # doctest: +SKIP
    (1062, 11337)
    >>> view.clear()                                                                   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from auvcore.results import ResultsFolder, read_case_record
from auvcore.results.proposals import LABEL_ONLY, MODEL_ONLY, disagreement_map, proposed_label
from vtk.util import numpy_support

from .explain_view import ijk_to_ras
from .node_removal import remove_node_and_dependents

#: The overlay's segments: map value, name after the structure's, colour (bright, unlike viridis and inferno).
OVERLAY_SEGMENTS = ((LABEL_ONLY, "label only", (1.0, 0.0, 1.0)), (MODEL_ONLY, "model only", (0.0, 0.9, 1.0)))
#: Node attribute marking the overlay, for the user and the tests.
PROPOSAL_ATTRIBUTE = "AUVSlicer.Proposal"
#: Fill opacity of the overlay in the slice views: the case's own segment stays visible under it.
OVERLAY_FILL_OPACITY = 0.6


@dataclass(frozen=True)
class ProposalOverlay:
    """The overlay shown: its node and segments, and how many voxels each segment holds."""

    case_id: str
    structure: str
    node: object
    segment_ids: tuple[str, str]
    label_only: int
    model_only: int

    def describe(self) -> str:
        return (f"{self.case_id} / {self.structure}: magenta, the label has it and the model does not "
                f"({self.label_only} voxels); cyan, the model has it and the label does not ({self.model_only} voxels)")


def labelmap_node_from_image(scene, image: sitk.Image, name: str):
    """A new label map volume node holding ``image``'s voxels on its grid (SimpleITK's LPS header, in RAS)."""
    voxels = sitk.GetArrayViewFromImage(image)
    data = vtk.vtkImageData()
    data.SetDimensions(*image.GetSize())
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(voxels, np.uint8).ravel(), deep=True,
                                                              array_type=vtk.VTK_UNSIGNED_CHAR))
    matrix = ijk_to_ras({"direction": image.GetDirection(), "spacing": image.GetSpacing(), "origin": image.GetOrigin()}, 0)
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name)
    node.SetAndObserveImageData(data)
    node.SetIJKToRASMatrix(matrix)
    return node


def fill_segment(scene, segmentation_node, segment_id: str, mask: sitk.Image) -> None:
    """Replace the voxels of ``segment_id`` by ``mask`` (non-zero inside), as ``slicer.util.
    updateSegmentBinaryLabelmapFromArray`` does: a label map imported into that one segment. No node is left."""
    labelmap = labelmap_node_from_image(scene, sitk.Cast(mask != 0, sitk.sitkUInt8), "AUV proposal mask")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation_node, ids):
            raise RuntimeError(f"Slicer could not put the mask into segment {segment_id!r} of {segmentation_node.GetName()}")
    finally:
        remove_node_and_dependents(scene, labelmap)


class ProposalView:
    """Shows one structure's disagreement overlay in ``scene`` at a time."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.overlay: ProposalOverlay | None = None

    def shows(self, case_id: str, structure: str) -> bool:
        """Whether the overlay of ``case_id`` / ``structure`` is in the scene."""
        overlay = self.overlay
        return (overlay is not None and (overlay.case_id, overlay.structure) == (case_id, structure)
                and overlay.node.GetScene() is self.scene)

    def show(self, folder: ResultsFolder, case_id: str, structure: str, reference_volume=None) -> ProposalOverlay:
        """Replace the overlay shown by that of ``structure`` (on ``reference_volume``'s geometry, if given).

        Raises:
            auvcore.errors.InputError: naming the case file, for a case scored without the probe (it says which
                command makes one), or a label changed since it was scored; the previous overlay is gone then.
        """
        self.clear()
        values = disagreement_map(folder, case_id, structure)
        node = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{case_id} {structure} disagreement")
        node.SetAttribute(PROPOSAL_ATTRIBUTE, "disagreement")
        try:
            node.CreateDefaultDisplayNodes()
            if reference_volume is not None:
                node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
            segment_ids = []
            for value, suffix, colour in OVERLAY_SEGMENTS:
                segment_id = node.GetSegmentation().AddEmptySegment("", f"{structure}: {suffix}", colour)
                fill_segment(self.scene, node, segment_id, values == value)
                segment_ids.append(segment_id)
            node.GetDisplayNode().SetOpacity2DFill(OVERLAY_FILL_OPACITY)
        except Exception:
            remove_node_and_dependents(self.scene, node)
            raise
        counts = np.bincount(sitk.GetArrayViewFromImage(values).ravel(), minlength=MODEL_ONLY + 1)
        self.overlay = ProposalOverlay(case_id, structure, node, (segment_ids[0], segment_ids[1]),
                                       int(counts[LABEL_ONLY]), int(counts[MODEL_ONLY]))
        return self.overlay

    def clear(self) -> None:
        """Remove the overlay (if it is still in the scene: Close Scene removes it without telling us)."""
        if self.overlay is not None and self.overlay.node.GetScene() is self.scene:
            remove_node_and_dependents(self.scene, self.overlay.node)
        self.overlay = None


def load_proposal_into_segment(scene, folder: ResultsFolder, case_id: str, structure: str, segmentation_node,
                               segment_id: str):
    """Replace ``segment_id``'s voxels by the proposal of ``structure`` (the model's outline, restricted to the
    structure), for the reviewer to edit and save as a correction; returns its :class:`auvcore.results.
    StructureChange` against the scored label (None when the proposal is the label, voxel for voxel).

    Raises:
        auvcore.errors.InputError: as :func:`~auvcore.results.proposals.proposed_label` (scored without the probe).
    """
    proposed = proposed_label(folder, case_id, [structure])
    value = {c.name: c.id for c in read_case_record(folder.case_json(case_id)).classes}[structure]
    fill_segment(scene, segmentation_node, segment_id, proposed.image == value)
    return proposed.changes[0] if proposed.changes else None
