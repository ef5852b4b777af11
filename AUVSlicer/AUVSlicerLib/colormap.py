"""Perceptual colour maps for U = 1 - S, and the colour table node their legend shows.

The maps are matplotlib's viridis and inferno (perceptually uniform, readable
in grey scale and by colour-blind viewers), sampled at 17 evenly spaced points
and linearly interpolated: at most 7/255 from the originals, with no plotting
library needed inside Slicer.

Example:
    >>> uncertainty_color(0.0, "viridis")
    (0.267, 0.0049, 0.3294)
    >>> [round(c, 3) for c in uncertainty_color(1.0, "inferno")]
    [0.988, 0.998, 0.645]
"""

from __future__ import annotations

import math

import numpy as np

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

#: Segments whose S is undefined are shown in this neutral grey, outside any colour map.
UNDEFINED_COLOR = (0.6, 0.6, 0.6)
#: Entries in the legend's colour table.
TABLE_SIZE = 256


def _anchors(colormap: str) -> np.ndarray:
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; choose one of {sorted(COLORMAPS)}")
    return np.asarray(COLORMAPS[colormap])


def uncertainty_color(u: float, colormap: str = "viridis") -> tuple[float, float, float]:
    """RGB in [0, 1] for uncertainty ``u`` (clipped to [0, 1]); NaN gets :data:`UNDEFINED_COLOR`."""
    anchors = _anchors(colormap)
    if math.isnan(u):
        return UNDEFINED_COLOR
    position = min(max(u, 0.0), 1.0) * (len(anchors) - 1)
    low = min(int(position), len(anchors) - 2)
    weight = position - low
    rgb = anchors[low] * (1.0 - weight) + anchors[low + 1] * weight
    return (round(float(rgb[0]), 4), round(float(rgb[1]), 4), round(float(rgb[2]), 4))


def spread_range(values, minimum_span: float = 0.02, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """The [low, high] of the finite ``values`` within ``bounds``, widened to ``minimum_span`` around its middle.

    Scores of one case often sit close together (U of 0.95 to 0.98 is common),
    so colouring over this range instead of [0, 1] shows their differences; the
    legend then gives the values.

    Example:
        >>> spread_range([0.95, 0.98, float("nan")])
        (0.95, 0.98)
        >>> spread_range([0.5])
        (0.49, 0.51)
    """
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    low, high = max(min(finite), bounds[0]), min(max(finite), bounds[1])
    if high - low < minimum_span:
        middle = min(max((low + high) / 2, bounds[0] + minimum_span / 2), bounds[1] - minimum_span / 2)
        low, high = middle - minimum_span / 2, middle + minimum_span / 2
    return (round(low, 6), round(high, 6))


def color_table_node(scene, name: str, colormap: str = "viridis", value_range: tuple[float, float] = (0.0, 1.0)):
    """A ``vtkMRMLColorTableNode`` named ``name`` (reused) of the colour map over U in ``value_range``.

    Its entries are named by their U value so a colour legend reads as a scale.
    """
    low, high = value_range
    node = scene.GetFirstNode(name, "vtkMRMLColorTableNode")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
        node.SetTypeToUser()
    node.SetAttribute("AUVSlicer.Colormap", colormap)
    node.SetNumberOfColors(TABLE_SIZE)
    for index in range(TABLE_SIZE):
        fraction = index / (TABLE_SIZE - 1)
        node.SetColor(index, f"{low + fraction * (high - low):.3f}", *uncertainty_color(fraction, colormap), 1.0)
    node.GetLookupTable().SetRange(low, high)
    return node
