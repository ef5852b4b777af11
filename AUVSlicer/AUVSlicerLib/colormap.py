"""The score colour maps in Slicer: the colour table node their legend shows.

The colours themselves are core's (:mod:`auvcore.results.colours`), so the
report's thumbnails and these segments follow one rule: viridis or inferno
sampled at 17 points and linearly interpolated, grey where there is no value.

Example:
    >>> uncertainty_color(0.0, "viridis")
    (0.267, 0.0049, 0.3294)
    >>> [round(c, 3) for c in uncertainty_color(1.0, "inferno")]
    [0.988, 0.998, 0.645]
"""

from __future__ import annotations

from auvcore.results.colours import COLORMAPS, UNDEFINED_COLOUR as UNDEFINED_COLOR, map_colour as uncertainty_color

__all__ = ["COLORMAPS", "TABLE_SIZE", "UNDEFINED_COLOR", "color_table_node", "uncertainty_color"]

#: Entries in the legend's colour table.
TABLE_SIZE = 256


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
