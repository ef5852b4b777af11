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
