"""A loaded cohort case's label: which file it came from, whether the reviewer edited it since, and saving the edits.

The label loaded is the one the results folder uses (:func:`auvcore.results.label_for`:
the case's correction where it has one, else its source). Edits are found in two
steps, so that asking costs nothing until something changed and a change that was
undone does not count: the modification times of the segments' binary label maps
(any voxel change, segment added or removed, moves them) are compared with those
when the label was loaded or saved; only when they moved is the segmentation
exported onto the source's grid (:mod:`~AUVSlicerLib.correction_export`) and
compared voxel by voxel with what was loaded or saved.

Saving goes through :func:`auvcore.results.save_correction`, which writes
``corrections/<case>`` and records the verdict ``fixed`` for each structure the
correction changes; the saved label then is the one loaded.

Example (with the slicer-core wheel or inside Slicer):
    >>> edits = CaseEdits(scene, loaded_case, label_for(folder, "ct_7", source), {5: "liver"})   # doctest: +SKIP
    >>> edits.has_unsaved_edits()                                                               # doctest: +SKIP
    False
    >>> saved = edits.save(folder, note="left lobe tip")        # after painting in the Segment Editor   # doctest: +SKIP
    >>> [change.structure for change in saved.changes]                                          # doctest: +SKIP
    ['liver']
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk
import slicer
from auvcore.results import Correction, LabelChoice, ResultsFolder, label_for, save_correction

from .correction_export import corrected_label_image, segment_values


def label_fingerprint(segmentation_node) -> tuple:
    """The segments and the modification times of their binary label maps: it moves whenever a voxel changes."""
    segmentation = segmentation_node.GetSegmentation()
    name = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    segments = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        labelmap = segmentation.GetSegment(segment_id).GetRepresentation(name)
        segments.append((segment_id, labelmap.GetMTime() if labelmap is not None else -1))
    return segmentation.GetSourceRepresentationName(), tuple(segments)


class CaseEdits:
    """One loaded case's label: ``choice`` says which file it is, :meth:`has_unsaved_edits` whether it was edited.

    Args:
        scene: the scene the case is loaded in.
        case: the loaded case (:class:`~AUVSlicerLib.case_loader.SceneCase`).
        choice: the label loaded (:func:`auvcore.results.label_for`).
        class_names: the case's classes, label value -> name (segments added in the Segment Editor are saved
            as the class they are named after).
    """

    def __init__(self, scene, case, choice: LabelChoice, class_names: Mapping[int, str]) -> None:
        self.scene, self.case, self.choice, self.class_names = scene, case, choice, dict(class_names)
        self._baseline: np.ndarray | None = None  # the label as loaded or saved, read when first needed
        self._unchanged_at = label_fingerprint(case.segmentation_node)

    @property
    def case_id(self) -> str:
        return self.case.case_id

    @property
    def in_scene(self) -> bool:
        return self.case.segmentation_node.GetScene() is self.scene

    def corrected_image(self) -> sitk.Image:
        """The segmentation now, as a label map on the source label's grid with its header."""
        node = self.case.segmentation_node
        return corrected_label_image(self.scene, node, self.choice.source, segment_values(node, self.class_names))

    def _baseline_voxels(self) -> np.ndarray:
        if self._baseline is None:
            self._baseline = sitk.GetArrayFromImage(sitk.ReadImage(str(self.choice.path)))
        return self._baseline

    def has_unsaved_edits(self) -> bool:
        """Whether the segmentation differs from the label loaded or last saved (False once it left the scene)."""
        if not self.in_scene:
            return False
        now = label_fingerprint(self.case.segmentation_node)
        if now == self._unchanged_at:
            return False
        # A view is only valid while its image lives: a view of a temporary read freed memory (found by CI on a
        # fresh machine, where an undone edit was reported as unsaved).
        image = self.corrected_image()
        edited = not np.array_equal(sitk.GetArrayViewFromImage(image), self._baseline_voxels())
        if not edited:
            self._unchanged_at = now
        return edited

    def save(self, folder: ResultsFolder, note: str = "") -> Correction:
        """Save the segmentation as the case's correction (verdict ``fixed`` per changed structure); returns it.

        Raises:
            auvcore.errors.InputError: from the core, naming the file (e.g. identical to the source, another grid).
            ValueError: for a segment that stands for no class of the case.
        """
        now = label_fingerprint(self.case.segmentation_node)
        image = self.corrected_image()
        saved = save_correction(folder, self.case_id, image, source=self.choice.source, note=note)
        self.choice = label_for(folder, self.case_id, self.choice.source)
        self._baseline, self._unchanged_at = sitk.GetArrayFromImage(image), now
        return saved
