"""Prompts from label maps: per-slice boxes per class and key slices.

Volumes are (D, H, W) arrays, slices along axis 0. Boxes are ``(x0, y0, x1, y1)``
in pixel indices of the slice, inclusive, as SAM-style models take them.

Example:
    >>> import numpy as np
    >>> labels = np.zeros((3, 8, 8), dtype=np.uint8)
    >>> labels[1, 2:5, 3:7] = 4
    >>> boxes = slice_boxes(labels, [4])
    >>> boxes.present[0].tolist()
    [False, True, False]
    >>> boxes.boxes[0, 1].tolist()
    [3.0, 2.0, 6.0, 4.0]
    >>> key_slices(labels, [4]).tolist()
    [1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.ndimage as ndi


@dataclass(frozen=True)
class SliceBoxes:
    """Per-class, per-slice bounding boxes of a label map.

    Attributes:
        class_ids: the label values, in order (C,).
        present: bool (C, D), where the class has at least one voxel on the slice.
        boxes: float32 (C, D, 4) ``(x0, y0, x1, y1)``; NaN where not present.
        areas: int64 (C, D), voxels of the class per slice.
    """

    class_ids: tuple[int, ...]
    present: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray


def slice_boxes(labels: np.ndarray, class_ids: Sequence[int]) -> SliceBoxes:
    """Bounding box of every class on every slice, in one pass over the label map."""
    depth = labels.shape[0]
    n_classes = len(class_ids)
    boxes = np.full((n_classes, depth, 4), np.nan, dtype=np.float32)
    areas = np.zeros((n_classes, depth), dtype=np.int64)
    index_of = {int(c): i for i, c in enumerate(class_ids)}
    for d in range(depth):
        plane = labels[d]
        values = np.unique(plane)
        wanted = [v for v in values.tolist() if v in index_of]
        if not wanted:
            continue
        # find_objects gives every label's bounding slices at once.
        objects = ndi.find_objects(plane.astype(np.int64, copy=False), max_label=max(wanted))
        counts = np.bincount(plane.ravel().astype(np.int64), minlength=max(wanted) + 1)
        for value in wanted:
            rows, cols = objects[value - 1]
            i = index_of[value]
            boxes[i, d] = (cols.start, rows.start, cols.stop - 1, rows.stop - 1)
            areas[i, d] = counts[value]
    return SliceBoxes(tuple(int(c) for c in class_ids), areas > 0, boxes, areas)


def key_slices(labels: np.ndarray, class_ids: Sequence[int]) -> np.ndarray:
    """Per class, the slice where it has the largest area (-1 if absent), as MedSAM2 prompts."""
    areas = slice_boxes(labels, class_ids).areas
    keys = areas.argmax(axis=1)
    return np.where(areas.max(axis=1) > 0, keys, -1)


#: A probe box is the label's box widened by this fraction of its size on each side, and by at least
#: PROBE_MARGIN_MIN pixels: loose enough that the model, not the label's outline, decides where the border is.
PROBE_MARGIN_FRACTION = 0.1
PROBE_MARGIN_MIN = 3


@dataclass(frozen=True)
class ProbeBoxes:
    """Box prompts that do not follow the label slice by slice: one per (class, slice) of each class's slice range
    widened by one slice at both ends.

    Each is the union of the class's boxes on the slice and its two neighbours, widened by a margin: a label
    drawn a few voxels too wide or narrow, or shifted, barely moves it, and the slices just beyond the
    label's ends get the box of the end slice, so the model can show a slice the label misses.

    Attributes:
        class_index: int64 (N,), index into the class ids.
        slices: int64 (N,), the slice (axis 0) of each box.
        boxes: float32 (N, 4) ``(x0, y0, x1, y1)`` in slice pixels, inclusive.
    """

    class_index: np.ndarray
    slices: np.ndarray
    boxes: np.ndarray

    def of_class(self, index: int) -> np.ndarray:
        """Positions (into the arrays) of one class's boxes, in slice order."""
        return np.flatnonzero(self.class_index == index)


def probe_boxes(labels: np.ndarray, class_ids: Sequence[int], fraction: float = PROBE_MARGIN_FRACTION,
                minimum: float = PROBE_MARGIN_MIN) -> ProbeBoxes:
    """The probe boxes of every class (see :class:`ProbeBoxes`).

    Example:
        >>> labels = np.zeros((5, 20, 20), dtype=np.uint8)
        >>> labels[1:3, 5:10, 8:12] = 1
        >>> probe = probe_boxes(labels, [1])
        >>> probe.slices.tolist()
        [0, 1, 2, 3]
        >>> probe.boxes[0].tolist()  # slice 0 gets slice 1's box, widened by 3 pixels
        [5.0, 2.0, 14.0, 12.0]
    """
    depth, height, width = labels.shape
    boxes = slice_boxes(labels, class_ids)
    indices, slices, found = [], [], []
    for index in range(len(class_ids)):
        present = boxes.present[index]
        held = np.flatnonzero(present)
        if held.size == 0:
            continue
        for d in range(max(0, int(held[0]) - 1), min(depth, int(held[-1]) + 2)):
            near = [k for k in (d - 1, d, d + 1) if 0 <= k < depth and present[k]]
            if not near:
                continue  # a gap of two or more slices inside the range: no neighbour to borrow a box from
            union = boxes.boxes[index, near]
            x0, y0 = union[:, 0].min(), union[:, 1].min()
            x1, y1 = union[:, 2].max(), union[:, 3].max()
            margin_x, margin_y = max(minimum, fraction * (x1 - x0 + 1)), max(minimum, fraction * (y1 - y0 + 1))
            found.append((max(0.0, x0 - margin_x), max(0.0, y0 - margin_y), min(width - 1.0, x1 + margin_x), min(height - 1.0, y1 + margin_y)))
            indices.append(index)
            slices.append(d)
    return ProbeBoxes(np.asarray(indices, dtype=np.int64), np.asarray(slices, dtype=np.int64),
                      np.asarray(found, dtype=np.float32).reshape(-1, 4))
