"""What ``auv audit`` plants: the share of cases, the corruption kinds and magnitudes, the repeats and the seed.

Plain values (no NumPy or SciPy), so ``auv --help`` can list the kinds and their default magnitudes.

Example:
    >>> KINDS[:3], MAGNITUDES["dilate"][0]
    (('dilate', 'erode', 'shift'), 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

LABEL_KINDS: tuple[str, ...] = ("dilate", "erode", "shift", "dropout", "end_slice", "blob", "swap")
IMAGE_KINDS: tuple[str, ...] = ("noise", "blur")
KINDS: tuple[str, ...] = (*LABEL_KINDS, *IMAGE_KINDS)

#: kind -> (default magnitude, what it means)
MAGNITUDES: dict[str, tuple[float, str]] = {
    "dilate": (2, "in-plane dilation radius in voxels (into background only)"),
    "erode": (2, "in-plane erosion radius in voxels"),
    "shift": (3, "in-plane shift in voxels, in a random direction"),
    "dropout": (0.3, "fraction of the structure's slices whose label is removed"),
    "end_slice": (1, "slices whose label is removed at one end of the structure (a missed first or last slice)"),
    "blob": (3, "radius in voxels of a spurious blob of the class placed away from it"),
    "swap": (1, "unused: two structures exchange labels"),
    "noise": (0.3, "Gaussian noise, as a fraction of the intensity standard deviation inside the labels"),
    "blur": (1.0, "in-plane Gaussian blur sigma in voxels"),
}


#: A magnitude, or a (low, high) range each planted case draws its own from.
Magnitude = float | tuple[float, float]
#: Kinds whose magnitude counts voxels or slices: a range gives whole numbers.
WHOLE_MAGNITUDES = frozenset({"dilate", "erode", "shift", "end_slice", "blob"})

#: The lesion audit's kinds and magnitudes (``auv audit --lesion-sizes``): errors of the size lesion labels have,
#: 1-3 voxel boundary errors, a shift of a few voxels, a missed slice at either end, a second small blob.
LESION_KINDS: tuple[str, ...] = ("dilate", "erode", "shift", "end_slice", "blob")
LESION_MAGNITUDES: dict[str, Magnitude] = {"dilate": (1, 3), "erode": (1, 3), "shift": (2, 4), "end_slice": 1, "blob": (2, 3)}


@dataclass(frozen=True)
class AuditSettings:
    """What to plant.

    Attributes:
        fraction: share of the cases corrupted in each repeat (at least one case).
        kinds: the corruption kinds (:data:`KINDS`).
        magnitudes: kind -> magnitude, or a (low, high) range each planted case draws from, overriding the defaults.
        repeats: independent draws of the corrupted subset; more repeats give
            more corrupted cases per kind at the cost of scoring them.
        seed: the seed of every draw.
    """

    fraction: float = 0.3
    kinds: tuple[str, ...] = KINDS
    magnitudes: dict[str, Magnitude] = field(default_factory=dict)
    repeats: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        unknown = set(self.kinds) - set(KINDS) | set(self.magnitudes) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown or no corruption kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
        if self.repeats < 1:
            raise ValueError("repeats must be at least 1")
        reversed_ranges = [k for k, m in self.magnitudes.items() if isinstance(m, tuple) and m[0] > m[1]]
        if reversed_ranges:
            raise ValueError(f"magnitude ranges must be low-high, got {', '.join(reversed_ranges)}")
