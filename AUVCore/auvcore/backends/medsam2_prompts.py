"""How MedSAM2 prompts a class: a box on the slice where the class is largest, tracked over its extent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..prompts import slice_boxes


@dataclass(frozen=True)
class ClassPrompt:
    """How one class is prompted: a box on its key slice, tracked over its extent.

    Attributes:
        key_slice: the slice where the class has the largest area.
        box: ``(x0, y0, x1, y1)`` on the key slice, as fractions of the slice width/height.
        first_slice, last_slice: the first and last slices that hold the class.
    """

    key_slice: int
    box: tuple[float, float, float, float]
    first_slice: int
    last_slice: int


def class_prompts(labels: np.ndarray, class_ids: Sequence[int]) -> tuple[np.ndarray, list[ClassPrompt | None]]:
    """Per class, the presence per slice (C, D) and its key-slice prompt (None when absent).

    Example:
        >>> labels = np.zeros((4, 10, 20), dtype=np.int32)
        >>> labels[1:3, 2:6, 5:15] = 7
        >>> labels[2, 2:8, 5:15] = 7
        >>> present, prompts = class_prompts(labels, [7, 9])
        >>> present.tolist()
        [[False, True, True, False], [False, False, False, False]]
        >>> prompts[0]
        ClassPrompt(key_slice=2, box=(0.25, 0.2, 0.7, 0.7), first_slice=1, last_slice=2)
        >>> prompts[1] is None
        True
    """
    boxes = slice_boxes(labels, class_ids)
    height, width = labels.shape[1:]
    scale = np.array([width, height, width, height], dtype=np.float64)
    prompts: list[ClassPrompt | None] = []
    for present, areas, class_boxes in zip(boxes.present, boxes.areas, boxes.boxes):
        if not present.any():
            prompts.append(None)
            continue
        key = int(areas.argmax())
        rows = np.flatnonzero(present)
        box = tuple(float(v) for v in class_boxes[key] / scale)
        prompts.append(ClassPrompt(key, box, int(rows[0]), int(rows[-1])))  # type: ignore[arg-type]
    return boxes.present, prompts

