"""One cohort case in a Slicer MRML scene for ``auv review``: its image, its label as coloured segments, and its edits.

The image and the label, as SimpleITK reads them (:func:`auvcore.imaging.read_image`,
what ``auv score`` read; a DICOM series folder too), become MRML volume nodes
on their own grids (LPS in the files, RAS in Slicer); the label becomes a
segmentation on the image's grid with one segment per class, named after it. The
label is the one the results folder uses (:func:`auvcore.results.label_for`: the
case's correction where it has one). Each structure is coloured by the review's
:class:`~auvcore.review.colour_plan.ColourPlan`; the one under review is shown fully,
the others dimmed. The edited segments go back to a label map on the grid of the
source label, with its values and pixel type (:meth:`CaseScene.edited_label`), for
:func:`auvcore.results.save_correction`.

Slicer's own logic does the work (``vtkSlicerSegmentationsModuleLogic``'s import
and export of label maps); nothing here needs Qt or PyTorch.

Example (with the slicer-core wheel):
    >>> scene = CaseScene(slicer.vtkMRMLScene())                                         # doctest: +SKIP
    >>> choice = label_for(folder, "ct_7", "seg.nii.gz")                                   # doctest: +SKIP
    >>> shown = scene.load("ct_7", read_image("ct.nii.gz"), read_image(choice.path), choice, {5: "liver"})   # doctest: +SKIP
    >>> scene.colour(plan); scene.highlight("liver")                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtkmodules.util import numpy_support

from ..errors import InputError

if TYPE_CHECKING:
    from ..results import LabelChoice
    from ..review.colour_plan import ColourPlan

#: LPS (ITK, SimpleITK) to RAS (Slicer): x and y change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: Fill opacity (2D) of the structure under review and of the others; outlines are drawn fully for the one
#: under review, so its border stays readable over the image; in 3D the others are faint.
FOCUS_FILL, OTHER_FILL, OTHER_OUTLINE, OTHER_3D = 0.5, 0.12, 0.35, 0.2
#: Segment tag: the label value a segment stands for.
LABEL_VALUE_TAG = "AUVReview.LabelValue"
#: The closed surfaces of the 3D view are not smoothed (Slicer's default is 0.5): a third of the time to make,
#: the voxels as they are.
SMOOTHING, SURFACE_SMOOTHING = "Smoothing factor", 0.0


def ijk_to_ras(image: sitk.Image) -> vtk.vtkMatrix4x4:
    """The IJK -> RAS matrix of a SimpleITK image (its LPS geometry with x and y flipped).

    Example:
        >>> image = sitk.Image(4, 4, 4, sitk.sitkUInt8); image.SetSpacing((2.0, 2.0, 3.0)); image.SetOrigin((10.0, 20.0, 30.0))
        >>> matrix = ijk_to_ras(image)
        >>> [matrix.GetElement(0, c) for c in range(4)], [matrix.GetElement(2, c) for c in range(4)]
        ([-2.0, 0.0, 0.0, -10.0], [0.0, 0.0, 3.0, 30.0])
    """
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin(), dtype=np.float64)
    result = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            result.SetElement(row, column, float(matrix[row, column]))
    return result


def volume_node(scene, image: sitk.Image, node_class: str, name: str):
    """A new ``node_class`` volume node holding ``image``'s voxels on its grid."""
    array = np.ascontiguousarray(sitk.GetArrayViewFromImage(image))
    data = vtk.vtkImageData()
    data.SetDimensions(*image.GetSize())
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.ravel(), deep=True))
    node = scene.AddNewNodeByClass(node_class, name)
    node.SetIJKToRASMatrix(ijk_to_ras(image))
    node.SetAndObserveImageData(data)
    return node


@dataclass(frozen=True)
class Header:
    """A label file's grid and pixel type: what a correction must have."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    dtype: np.dtype

    def image(self, voxels: np.ndarray) -> sitk.Image:
        """``voxels`` (z, y, x) as an image of this grid and pixel type."""
        image = sitk.GetImageFromArray(voxels.astype(self.dtype, copy=False))
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


def _header_of(label: sitk.Image) -> Header:
    return Header(label.GetSize(), label.GetSpacing(), label.GetOrigin(), label.GetDirection(),
                  sitk.GetArrayViewFromImage(label).dtype)


@dataclass(frozen=True)
class LoadedCase:
    """What :meth:`CaseScene.load` put in the scene: the case's nodes, its segments by class, and its label."""

    case_id: str
    volume: object
    segmentation: object
    #: The label file read, on its own grid (the export's reference), and its voxels as loaded or last saved.
    label_reference: object
    segments: dict[str, str]
    values: dict[str, int]
    choice: LabelChoice
    header: Header


class CaseScene:
    """Loads one case at a time into ``scene`` (the previous one's nodes leave it), colours and edits it."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.loaded: LoadedCase | None = None
        self._baseline: np.ndarray | None = None

    def load(self, case_id: str, image: sitk.Image, label: sitk.Image, choice: LabelChoice,
             class_names: Mapping[int, str], window: tuple[float, float] | None = None) -> LoadedCase:
        """Unload the previous case; show ``image`` and ``label`` (the file of ``choice``) with one segment per class.

        Args:
            image, label: the volumes as SimpleITK read them (:func:`auvcore.imaging.read_image`).
            choice: the label the results folder uses (its correction, or the source).
            class_names: label value -> class name (the case record's classes).
            window: the intensity window (low, high) to show, e.g. the CT window the case was scored with;
                None: Slicer's automatic window.

        Raises:
            InputError: naming the label file, when Slicer cannot import it.
        """
        self.unload()
        volume = volume_node(self.scene, image, "vtkMRMLScalarVolumeNode", case_id)
        volume.CreateDefaultDisplayNodes()
        display = volume.GetDisplayNode()
        display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
        if window is not None:
            display.SetAutoWindowLevel(False)
            display.SetWindowLevelMinMax(*window)
        reference = volume_node(self.scene, label, "vtkMRMLLabelMapVolumeNode", f"{case_id} label")
        segmentation = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{case_id} segmentation")
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        segmentation.GetSegmentation().SetConversionParameter(SMOOTHING, str(SURFACE_SMOOTHING))
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(reference, segmentation):
            for node in (segmentation, reference, volume):
                self.scene.RemoveNode(node)
            raise InputError(choice.path, "cannot be imported as a segmentation (an empty or unreadable label map?)")
        segments, values = self._name_segments(segmentation, class_names)
        self.loaded = LoadedCase(case_id, volume, segmentation, reference, segments, values, choice, _header_of(label))
        self._baseline = sitk.GetArrayFromImage(label)
        return self.loaded

    @staticmethod
    def _name_segments(segmentation, class_names: Mapping[int, str]) -> tuple[dict[str, str], dict[str, int]]:
        """Name each imported segment after its class; class name -> segment id, and -> label value."""
        contents = segmentation.GetSegmentation()
        segments, values = {}, {}
        for index in range(contents.GetNumberOfSegments()):
            segment_id = contents.GetNthSegmentID(index)
            segment = contents.GetSegment(segment_id)
            value = int(segment.GetLabelValue())
            name = class_names.get(value, f"label_{value}")
            segment.SetName(name)
            segment.SetTag(LABEL_VALUE_TAG, str(value))
            segments[name], values[name] = segment_id, value
        return segments, values

    def unload(self) -> None:
        """Remove the loaded case's nodes (with their display and storage nodes) from the scene."""
        if self.loaded is None:
            return
        for node in (self.loaded.segmentation, self.loaded.label_reference, self.loaded.volume):
            dependents = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
            self.scene.RemoveNode(node)
            for dependent in dependents:
                if dependent is not None and dependent.GetScene() is self.scene:
                    self.scene.RemoveNode(dependent)
        self.loaded, self._baseline = None, None

    def _case(self) -> LoadedCase:
        if self.loaded is None:
            raise RuntimeError("no case is loaded")
        return self.loaded

    def colour(self, plan: ColourPlan, colormap: str = "viridis") -> None:
        """Colour every segment by ``plan`` (grey where it has no value)."""
        contents = self._case().segmentation.GetSegmentation()
        for name, segment_id in self._case().segments.items():
            colour = plan.colour(name, colormap)
            segment = contents.GetSegment(segment_id)
            if tuple(round(c, 4) for c in segment.GetColor()) != colour:  # unchanged: no redraw
                segment.SetColor(*colour)

    def highlight(self, structure: str) -> str:
        """Show ``structure`` fully and dim the other segments; returns its segment id.

        Raises:
            KeyError: when the case's label holds no such structure.
        """
        case = self._case()
        if structure not in case.segments:
            raise KeyError(f"{case.case_id}'s label {case.choice.path} holds no {structure!r}; it holds "
                           f"{', '.join(sorted(case.segments))}")
        display = case.segmentation.GetDisplayNode()
        focus = case.segments[structure]
        modifying = display.StartModify()  # one change for the views, not one per segment
        display.SetOpacity2DFill(1.0)
        display.SetOpacity2DOutline(1.0)
        for segment_id in case.segments.values():
            display.SetSegmentVisibility(segment_id, True)
            display.SetSegmentOpacity2DFill(segment_id, FOCUS_FILL if segment_id == focus else OTHER_FILL)
            display.SetSegmentOpacity2DOutline(segment_id, 1.0 if segment_id == focus else OTHER_OUTLINE)
            display.SetSegmentOpacity3D(segment_id, 1.0 if segment_id == focus else OTHER_3D)
        display.EndModify(modifying)
        return focus

    def centre_of(self, structure: str) -> tuple[float, float, float]:
        """The RAS centre of a structure's voxels (where to look when the case has no per-slice values)."""
        case = self._case()
        centre = [0.0, 0.0, 0.0]
        case.segmentation.GetSegmentCenterRAS(case.segments[structure], centre)
        return (centre[0], centre[1], centre[2])

    def edited_label(self) -> sitk.Image:
        """The segments now, as a label map on the source label's grid with its values, pixel type and header.

        Raises:
            ValueError: naming the segment, for one that stands for no class of the case.
        """
        case = self._case()
        contents = case.segmentation.GetSegmentation()
        by_name = {name: value for name, value in case.values.items()}
        values: dict[str, int] = {}
        for index in range(contents.GetNumberOfSegments()):
            segment_id = contents.GetNthSegmentID(index)
            segment = contents.GetSegment(segment_id)
            text = vtk.reference("")
            value = int(str(text)) if segment.GetTag(LABEL_VALUE_TAG, text) else by_name.get(segment.GetName())
            if value is None:
                raise ValueError(f"segment {segment.GetName()!r} stands for no class of {case.case_id}: name it after one "
                                 f"of {', '.join(sorted(by_name))} or delete it")
            values[segment_id] = value
        return case.header.image(self._export(case, values))

    def _export(self, case: LoadedCase, values: Mapping[str, int]) -> np.ndarray:
        """The segments of ``values`` (segment id -> label value) as voxels on the label's grid, z y x."""
        shape = tuple(reversed(case.header.size))
        if not values:
            return np.zeros(shape, np.int32)
        # Slicer's export places each segment at the entry of this table named like the segment.
        table = self.scene.AddNewNodeByClass("vtkMRMLColorTableNode", "AUV review export values")
        table.SetTypeToUser()
        table.SetNumberOfColors(max(values.values()) + 1)
        contents = case.segmentation.GetSegmentation()
        ids = vtk.vtkStringArray()
        for segment_id, value in values.items():
            table.SetColor(value, contents.GetSegment(segment_id).GetName(), 1.0, 1.0, 1.0, 1.0)
            ids.InsertNextValue(segment_id)
        labelmap = self.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "AUV review export")
        labelmap.CreateDefaultDisplayNodes()
        labelmap.GetDisplayNode().SetAndObserveColorNodeID(table.GetID())  # else the export adds a table of its own
        try:
            if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                    case.segmentation, ids, labelmap, case.label_reference, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,
                    table):
                raise RuntimeError(f"Slicer could not export the segments of {case.case_id} to a label map")
            data = labelmap.GetImageData()
            voxels = numpy_support.vtk_to_numpy(data.GetPointData().GetScalars()).reshape(shape).copy()
        finally:
            display = labelmap.GetDisplayNode()
            for node in (labelmap, display, table):
                if node is not None and node.GetScene() is self.scene:
                    self.scene.RemoveNode(node)
        return voxels

    def edits(self) -> sitk.Image | None:
        """The segments as :meth:`edited_label` exports them where they differ from the label as loaded or last
        saved; None where they do not (one export, which saving then writes)."""
        if self.loaded is None or self._baseline is None:
            return None
        edited = self.edited_label()
        return None if np.array_equal(sitk.GetArrayViewFromImage(edited), self._baseline) else edited

    def has_edits(self) -> bool:
        """Whether the segments differ from the label as loaded or last saved."""
        return self.edits() is not None

    def saved(self, image: sitk.Image, choice: LabelChoice) -> None:
        """``image`` was saved as the case's correction (now ``choice``): it is what later edits are compared with."""
        case = self._case()
        self.loaded = LoadedCase(case.case_id, case.volume, case.segmentation, case.label_reference, case.segments,
                                 case.values, choice, case.header)
        self._baseline = sitk.GetArrayFromImage(image)
