"""Evidence about a structure's label that needs no other case: the model prompted without the label's outline.

Every box prompt of the classwise pass is the label's own box, so the model follows a label's error: a
dilated label gets a bigger box and a bigger mask. The probe prompts the model again on the same slice
embeddings with boxes that do not follow the label slice by slice (:func:`auvcore.prompts.probe_boxes`: each
slice gets the union of its own and its neighbours' boxes, widened by a margin, and the slice just beyond
each end of the label gets the box of the end slice). Its masks, brought onto the label's own voxel grid, are
compared with the label on this case alone:

* the model's mask and the label's disagreement, signed: where the label has the structure and the model
  does not, and the reverse (the disagreement map); the structure's size offset (mm, + = the label is
  larger than the model's outline), its shift (mm, the label's centre against the model's, slice by slice);
* slices the label misses: how well the model's mask on a slice just beyond the label's end matches the
  end slice's label.

The model's mask, restricted to the structure (inside the probe's boxes, never over another structure's
voxels), is the proposed correction that ``auv propose`` can save (:mod:`auvcore.results.proposals`).

Example:
    >>> label = np.zeros((3, 12, 12), bool); label[:, 3:9, 3:9] = True
    >>> model = np.zeros_like(label); model[:, 4:8, 4:8] = True  # the model's outline is a voxel inside
    >>> evidence = compare_masks(label, model, (1.0, 1.0), label_slices=(0, 3))
    >>> round(evidence.values["size_offset"], 2), round(evidence.values["shift"], 2)  # corners count sqrt(2)
    (1.04, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..prompts import ProbeBoxes

#: The values :func:`compare_masks` gives that are scorers, and whether each has per-slice values.
EVIDENCE_SCORERS: dict[str, bool] = {"probe_agreement": True, "size_offset": True, "shift": True, "missed_slices": False}


@dataclass
class StructureEvidence:
    """One structure's probe result on its crop of the label grid.

    Attributes:
        corner: (slice, row, column) of the crop in the (LPS) volume.
        label, model: bool (n, h, w), the label's and the model's masks on the crop.
        values: the structure's scores by name (see :func:`compare_masks`).
        per_slice: per score with slice values, (n,) float64 aligned with the crop's slices (NaN where none).
    """

    corner: tuple[int, int, int]
    label: np.ndarray
    model: np.ndarray
    values: dict[str, float] = field(default_factory=dict)
    per_slice: dict[str, np.ndarray] = field(default_factory=dict)


def _edge(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def _signed_distance(mask: np.ndarray, pixel_mm: tuple[float, float]) -> np.ndarray:
    """Distance (mm, pixel centre to centre) to the mask's edge pixels, positive outside the mask, negative inside:
    an edge one pixel outside another's is 1 pixel away (a corner sqrt(2))."""
    distance = ndimage.distance_transform_edt(~_edge(mask), sampling=pixel_mm)
    return np.where(mask, -distance, distance)


def compare_masks(label: np.ndarray, model: np.ndarray, pixel_mm: tuple[float, float],
                  label_slices: tuple[int, int]) -> StructureEvidence:
    """The signed comparison of a structure's label and the model's mask on one crop (see the module docstring).

    Args:
        label, model: bool (n, h, w) on the same crop.
        pixel_mm: (row, column) pixel size in mm.
        label_slices: (first, stop) positions of the label's own slices in the crop; the crop's slices
            outside them are the probe's slices just beyond the label's ends.

    Values:
        ``probe_agreement``: 1 - Dice of label and model over the crop;
        ``size_offset``: mm, signed (+ = the label is larger than the model's outline): the mean of the signed
        distances of the label's boundary from the model's and of the model's from the label's, slices weighted
        by the label's boundary length;
        ``shift``: mm, the length of the area-weighted mean of the slices' label-minus-model centre offsets;
        ``missed_slices``: the Dice of the model's mask on a slice just beyond the label's end and the end
        slice's label, the larger of the two ends: the model sees the structure continue where the label stops.
    """
    first, stop = label_slices
    depth = label.shape[0]
    offsets, lengths, areas, agreement = (np.full(depth, np.nan) for _ in range(4))
    centre_offsets = np.full((depth, 2), np.nan)
    for d in range(depth):
        slice_total = label[d].sum() + model[d].sum()
        if slice_total:
            agreement[d] = 1.0 - 2.0 * np.count_nonzero(label[d] & model[d]) / slice_total
        if not (label[d].any() and model[d].any()):
            continue
        label_edge, model_edge = _edge(label[d]), _edge(model[d])
        outward = _signed_distance(model[d], pixel_mm)[label_edge].mean()
        inward = -_signed_distance(label[d], pixel_mm)[model_edge].mean()
        offsets[d], lengths[d] = (outward + inward) / 2, label_edge.sum()
        centre_offsets[d] = (np.array(ndimage.center_of_mass(label[d])) - np.array(ndimage.center_of_mass(model[d]))) * pixel_mm
        areas[d] = label[d].sum()
    both = np.isfinite(offsets)
    total = label.sum() + model.sum()
    values = {"probe_agreement": float(1.0 - 2.0 * np.count_nonzero(label & model) / total) if total else np.nan,
              "size_offset": float(np.sum(offsets[both] * lengths[both]) / lengths[both].sum()) if both.any() else np.nan,
              "shift": np.nan, "missed_slices": 0.0}
    if both.any():
        values["shift"] = float(np.hypot(*((centre_offsets[both] * areas[both, None]).sum(axis=0) / areas[both].sum())))
    for beyond, end in ((first - 1, first), (stop, stop - 1)):
        if 0 <= beyond < depth and 0 <= end < depth and (model[beyond].any() or label[end].any()):
            overlap = 2.0 * np.count_nonzero(model[beyond] & label[end]) / (model[beyond].sum() + label[end].sum())
            values["missed_slices"] = max(values["missed_slices"], float(overlap))
    per_slice = {"probe_agreement": agreement, "size_offset": offsets,
                 "shift": np.hypot(centre_offsets[:, 0], centre_offsets[:, 1])}
    return StructureEvidence((0, 0, 0), label, model, values, per_slice)


def probe_window(boxes: np.ndarray, slices: np.ndarray, shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    """The crop (slices, rows, columns) that holds one structure's probe boxes.

    Example:
        >>> probe_window(np.array([[2.5, 1.0, 6.2, 4.0]]), np.array([3]), (5, 10, 10))
        (slice(3, 4, None), slice(1, 5, None), slice(2, 8, None))
    """
    rows = slice(max(0, int(np.floor(boxes[:, 1].min()))), min(shape[1], int(np.ceil(boxes[:, 3].max())) + 1))
    columns = slice(max(0, int(np.floor(boxes[:, 0].min()))), min(shape[2], int(np.ceil(boxes[:, 2].max())) + 1))
    return slice(int(slices.min()), int(slices.max()) + 1), rows, columns


def case_evidence(labels: np.ndarray, class_ids: Sequence[int], spacing: tuple[float, float, float], probe: ProbeBoxes,
                  full_logits: Callable[[np.ndarray], np.ndarray]) -> list[StructureEvidence | None]:
    """Each class's :class:`StructureEvidence` (None for a class without probe boxes).

    Args:
        labels: the (D, H, W) label map.
        probe: the probe's boxes (:func:`auvcore.prompts.probe_boxes`).
        full_logits: positions into the probe's arrays -> their mask logits on the label's voxel grid (n, H, W).

    The model's mask is kept inside each slice's probe box and off other structures' voxels: it is the
    structure's proposed correction, which must change nothing else.
    """
    found: list[StructureEvidence | None] = []
    for index, class_id in enumerate(class_ids):
        positions = probe.of_class(index)
        if positions.size == 0:
            found.append(None)
            continue
        slices, boxes = probe.slices[positions], probe.boxes[positions]
        window = probe_window(boxes, slices, labels.shape)
        region = labels[window]
        label = region == class_id
        model = np.zeros_like(label)
        logits = full_logits(positions)
        for logit_map, d, (x0, y0, x1, y1) in zip(logits, slices, boxes):
            inside = np.zeros(labels.shape[1:], dtype=bool)
            inside[int(np.floor(y0)) : int(np.ceil(y1)) + 1, int(np.floor(x0)) : int(np.ceil(x1)) + 1] = True
            model[d - window[0].start] = ((logit_map > 0) & inside)[window[1], window[2]]
        model &= label | (region == 0)
        held = np.flatnonzero(label.any(axis=(1, 2)))
        evidence = compare_masks(label, model, (spacing[1], spacing[2]), (int(held[0]), int(held[-1]) + 1))
        evidence.corner = (window[0].start, window[1].start, window[2].start)
        found.append(evidence)
    return found
