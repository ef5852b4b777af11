"""Structure colours: a structure's robust z within its class, on one fixed scale, for every view of a cohort.

The per-class z of ``structures.csv`` (:mod:`.structures`) says how unusual a
structure is for that structure in this cohort; U = 1 - S itself does not
(it lies in 0.90-0.99 for almost every structure). The colour is the z clipped
to :data:`Z_RANGE` (0 = typical or better, 3 = three robust deviations more
suspect, or more) on a perceptual map; a structure without a z is grey. The
HTML report's thumbnails and the Slicer module's segments use this same rule.

The maps are matplotlib's viridis and inferno (perceptually uniform, readable
in grey scale and by colour-blind viewers) sampled at 17 evenly spaced points
and linearly interpolated: at most 7/255 from the originals, with no plotting
library needed (Slicer's Python has none).

Example:
    >>> map_colour(0.0, "viridis")
    (0.267, 0.0049, 0.3294)
    >>> z_colour(7.5) == z_colour(3.0) == map_colour(1.0), z_colour(-2.0) == map_colour(0.0)
    (True, True)
    >>> z_colour(float("nan")) == UNDEFINED_COLOUR
    True
"""

from __future__ import annotations

import math

COLORMAPS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "viridis": (
        (0.267, 0.0049, 0.3294), (0.2823, 0.095, 0.4173), (0.2788, 0.1755, 0.4834), (0.259, 0.2515, 0.5247),
        (0.2297, 0.3224, 0.5457), (0.1994, 0.3876, 0.5546), (0.1727, 0.4488, 0.5579), (0.149, 0.5081, 0.5573),
        (0.1276, 0.5669, 0.5506), (0.1206, 0.6258, 0.5335), (0.1579, 0.6838, 0.5017), (0.2461, 0.7389, 0.452),
        (0.3692, 0.7889, 0.3829), (0.516, 0.8312, 0.2943), (0.6785, 0.8637, 0.1895), (0.8456, 0.8873, 0.0997),
        (0.9932, 0.9062, 0.1439),
    ),
    "inferno": (
        (0.0015, 0.0005, 0.0139), (0.0423, 0.0281, 0.1411), (0.1293, 0.0473, 0.2908), (0.2383, 0.0366, 0.3964),
        (0.3415, 0.0623, 0.4294), (0.4412, 0.0993, 0.4316), (0.5409, 0.1347, 0.4151), (0.6401, 0.1714, 0.3811),
        (0.7357, 0.2159, 0.3302), (0.8224, 0.2752, 0.2661), (0.8943, 0.3534, 0.1936), (0.947, 0.4492, 0.1153),
        (0.9784, 0.5579, 0.0349), (0.9879, 0.6753, 0.0653), (0.9746, 0.7977, 0.2063), (0.9476, 0.9174, 0.4107),
        (0.9884, 0.9984, 0.6449),
    ),
}

#: Structures without a value (no z: too few cases hold the class, or no score) are this neutral grey, outside every map.
UNDEFINED_COLOUR = (0.6, 0.6, 0.6)
#: The fixed colour scale of a z: 0 (typical for this structure, or better) to 3 (3 or more robust deviations).
Z_RANGE = (0.0, 3.0)


def map_colour(fraction: float, colormap: str = "viridis") -> tuple[float, float, float]:
    """RGB in [0, 1] at ``fraction`` (clipped to [0, 1]) along ``colormap``; NaN gets :data:`UNDEFINED_COLOUR`."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; choose one of {sorted(COLORMAPS)}")
    if math.isnan(fraction):
        return UNDEFINED_COLOUR
    anchors = COLORMAPS[colormap]
    position = min(max(fraction, 0.0), 1.0) * (len(anchors) - 1)
    low = min(int(position), len(anchors) - 2)
    weight = position - low
    return tuple(round(a * (1.0 - weight) + b * weight, 4) for a, b in zip(anchors[low], anchors[low + 1]))  # type: ignore[return-value]


def clipped_z(z: float) -> float:
    """``z`` clipped to :data:`Z_RANGE` (NaN stays NaN): what a structure's colour shows."""
    return z if math.isnan(z) else min(max(z, Z_RANGE[0]), Z_RANGE[1])


def z_colour(z: float, colormap: str = "viridis") -> tuple[float, float, float]:
    """The colour of a structure whose robust z within its class is ``z`` (grey when NaN)."""
    low, high = Z_RANGE
    return map_colour((clipped_z(z) - low) / (high - low), colormap)
