"""Corruptions planted in a copy of a case: the errors an audit must find.

Arrays are in SimpleITK order (slice, row, column); "in-plane" is the last two
axes. Label corruptions change one structure (two for a swap), as a careless
annotation would; image corruptions change the whole volume. Each function
takes copies and returns ``(image, labels, detail)``; ``detail`` says what
was changed and how many voxels.

Default magnitudes are small: a couple of voxels, a third of a structure's
slices. ``auv audit --magnitude kind=value`` changes them, and
``kind=low-high`` draws each planted case's magnitude from that range
(whole numbers for the kinds measured in voxels or slices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection

import numpy as np
from scipy import ndimage

from ..scorers.edges import disk
from .settings import IMAGE_KINDS, KINDS, MAGNITUDES, WHOLE_MAGNITUDES, Magnitude

#: A structure can be corrupted when it holds this many voxels on at least MIN_SLICES slices.
MIN_VOXELS = 50
MIN_SLICES = 3


@dataclass(frozen=True)
class Corruption:
    """What was planted in one case."""

    kind: str
    magnitude: float
    classes: tuple[int, ...]
    changed_voxels: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "magnitude": self.magnitude, "classes": " ".join(map(str, self.classes)),
                "changed_voxels": self.changed_voxels}


def eligible_classes(labels: np.ndarray) -> list[int]:
    """Structures big enough to corrupt: MIN_VOXELS voxels over at least MIN_SLICES slices."""
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    return [int(c) for c, n in zip(ids, counts) if n >= MIN_VOXELS and (labels == c).any(axis=(1, 2)).sum() >= MIN_SLICES]


def applicable(kind: str, labels: np.ndarray, targets: Collection[int] | None = None) -> bool:
    """Whether ``kind`` can be planted in a case with these labels (on one of ``targets`` when given)."""
    if kind in IMAGE_KINDS:
        return True
    eligible = eligible_classes(labels)
    if targets is not None and not set(eligible) & set(targets):
        return False
    return len(eligible) >= (2 if kind == "swap" else 1)


def _disk(radius: int) -> np.ndarray:
    """A (1, 2r+1, 2r+1) in-plane disk: morphology slice by slice."""
    return disk(radius)[None]


def _dilate(image, labels, target, magnitude, rng):
    grown = ndimage.binary_dilation(labels == target, structure=_disk(int(magnitude))) & (labels == 0)
    labels[grown] = target
    return int(grown.sum())


def _erode(image, labels, target, magnitude, rng):
    mask = labels == target
    lost = mask & ~ndimage.binary_erosion(mask, structure=_disk(int(magnitude)))
    labels[lost] = 0
    return int(lost.sum())


def _shift(image, labels, target, magnitude, rng):
    angle = rng.uniform(0, 2 * np.pi)
    offset = (0, int(round(magnitude * np.sin(angle))), int(round(magnitude * np.cos(angle))))
    mask = labels == target
    moved = ndimage.shift(mask, offset, order=0, mode="constant", cval=False)
    labels[mask] = 0
    placed = moved & (labels == 0)
    labels[placed] = target
    return int((mask ^ placed).sum())


def _dropout(image, labels, target, magnitude, rng):
    slices = np.flatnonzero((labels == target).any(axis=(1, 2)))
    count = max(1, int(round(magnitude * len(slices))))
    # Drop slices inside the structure's range, so the error is a gap, not a shortened end.
    inner = slices[1:-1] if len(slices) > 2 else slices
    dropped = rng.choice(inner, size=min(count, len(inner)), replace=False)
    lost = np.zeros_like(labels, dtype=bool)
    lost[dropped] = labels[dropped] == target
    labels[lost] = 0
    return int(lost.sum())


def _end_slice(image, labels, target, magnitude, rng):
    slices = np.flatnonzero((labels == target).any(axis=(1, 2)))
    count = min(max(1, int(round(magnitude))), len(slices) - 1)
    # A missed slice at one end of the structure, drawn at random: the label stops short of it.
    dropped = slices[:count] if rng.random() < 0.5 else slices[len(slices) - count :]
    lost = np.zeros_like(labels, dtype=bool)
    lost[dropped] = labels[dropped] == target
    labels[lost] = 0
    return int(lost.sum())


def _blob(image, labels, target, magnitude, rng):
    radius = int(magnitude)
    far = ~ndimage.binary_dilation(labels == target, structure=_disk(3 * radius))
    body = image > np.percentile(image, 25)  # inside the body, not in the air around it
    candidates = np.argwhere(far & body & (labels == 0))
    if len(candidates) == 0:
        candidates = np.argwhere(far)
    centre = candidates[rng.integers(len(candidates))]
    z, y, x = np.ogrid[: labels.shape[0], : labels.shape[1], : labels.shape[2]]
    ball = ((y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2) & (np.abs(z - centre[0]) <= max(1, radius // 2))
    placed = ball & (labels == 0)
    labels[placed] = target
    return int(placed.sum())


PLANTERS: dict[str, Callable[..., int]] = {
    "dilate": _dilate, "erode": _erode, "shift": _shift, "dropout": _dropout, "end_slice": _end_slice, "blob": _blob,
}


def draw_magnitude(kind: str, magnitude: Magnitude | None, rng: np.random.Generator) -> float:
    """The magnitude of one planted case: the default, the one given, or one drawn from a ``(low, high)`` range
    (a whole number for the kinds counted in voxels or slices).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> draw_magnitude("dilate", None, rng), draw_magnitude("dilate", 1.0, rng)
        (2, 1.0)
        >>> sorted({draw_magnitude("dilate", (1, 3), rng) for _ in range(50)})
        [1, 2, 3]
    """
    if magnitude is None:
        return MAGNITUDES[kind][0]
    if not isinstance(magnitude, tuple):
        return magnitude
    low, high = magnitude
    if kind in WHOLE_MAGNITUDES:
        return int(rng.integers(int(round(low)), int(round(high)) + 1))
    return float(rng.uniform(low, high))


def plant(kind: str, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, magnitude: float | None = None,
          target: int | None = None) -> tuple[np.ndarray, np.ndarray, Corruption]:
    """Plant one corruption of ``kind`` in copies of ``image`` and ``labels``.

    A label corruption changes ``target`` (a swap: ``target`` and another
    structure) when given, else a structure drawn from ``rng``.

    Example:
        >>> labels = np.zeros((4, 12, 12), np.uint8); labels[:, 3:8, 3:8] = 1
        >>> image = np.random.default_rng(0).normal(size=labels.shape)
        >>> _, corrupted, what = plant("dilate", image, labels, np.random.default_rng(0), 1)
        >>> what.kind, what.classes, int((corrupted == 1).sum() - (labels == 1).sum()) == what.changed_voxels
        ('dilate', (1,), True)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r}; choose from {', '.join(KINDS)}")
    magnitude = MAGNITUDES[kind][0] if magnitude is None else magnitude
    image, labels = image.copy(), labels.copy()
    if kind == "noise":
        inside = image[labels > 0] if (labels > 0).any() else image
        sigma = magnitude * float(inside.std())
        image = image + rng.normal(0.0, sigma, size=image.shape).astype(image.dtype)
        return image, labels, Corruption(kind, magnitude, (), int(image.size))
    if kind == "blur":
        blurred = ndimage.gaussian_filter(image.astype(np.float64), sigma=(0, magnitude, magnitude)).astype(image.dtype)
        return blurred, labels, Corruption(kind, magnitude, (), int(image.size))
    classes = eligible_classes(labels)
    if kind == "swap":
        if target is None:
            first, second = (int(c) for c in rng.choice(classes, size=2, replace=False))
        else:
            first, second = target, int(rng.choice([c for c in classes if c != target]))
        a, b = labels == first, labels == second
        labels[a], labels[b] = second, first
        return image, labels, Corruption(kind, magnitude, (first, second), int(a.sum() + b.sum()))
    target = int(rng.choice(classes)) if target is None else target
    changed = PLANTERS[kind](image, labels, target, magnitude, rng)
    return image, labels, Corruption(kind, magnitude, (target,), changed)
