"""Colour each segment by a score (U = 1 - S, or its z in a reference cohort), with a legend; switch back to its own colour.

Everything needed to switch is kept on the nodes themselves, so it survives a
saved and reloaded scene: each segment gets tags with its U and its original
colour, and the segmentation node attributes record what is shown.

Segments are matched to the case's classes by label value (the tag this module
sets when it loads or exports a label map, else the segment's own label value
when the segmentation is one shared label layer, as an imported label map is),
then by name, ignoring case.

Example (inside Slicer, or headless with the slicer-core wheel):
    >>> coloring = UncertaintyColoring(scene)                        # doctest: +SKIP
    >>> matched = coloring.apply(segmentation_node, case_result)     # doctest: +SKIP
    >>> coloring.show_original(segmentation_node)                    # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import slicer
import vtk
from auvcore.review.case_scores import CaseResult, ClassScore

from .colormap import color_table_node, uncertainty_color
from .labelmap_import import LABEL_VALUE_TAG

#: Segment tag: the value the segment is coloured by, U or a z ("nan" where undefined).
UNCERTAINTY_TAG = "AUVSlicer.U"
#: Segment tag: the segment's colour before uncertainty colouring, "r g b".
ORIGINAL_COLOR_TAG = "AUVSlicer.OriginalColor"
#: Segmentation node attributes.
SHOWING_ATTRIBUTE = "AUVSlicer.ShowingUncertainty"
COLORMAP_ATTRIBUTE = "AUVSlicer.Colormap"
RANGE_ATTRIBUTE = "AUVSlicer.URange"
TITLE_ATTRIBUTE = "AUVSlicer.LegendTitle"
ORIGINAL_COLOR_NODE_ATTRIBUTE = "AUVSlicer.OriginalColorNodeID"
LEGEND_TITLE = "Uncertainty U = 1 - S"


def _tag(segment, name: str) -> str | None:
    """A segment tag's value, ``None`` when the segment has no such tag."""
    text = vtk.reference("")
    return str(text) if segment.GetTag(name, text) else None


def segment_label_value(segmentation, segment_id: str) -> int | None:
    """The label value a segment stands for, or ``None`` when it cannot be known.

    That is its tag; in a segmentation nobody tagged, the segment's own value
    when all segments share one label layer (as after importing a label map),
    since values are unique only within a layer.
    """
    segment = segmentation.GetSegment(segment_id)
    tagged = _tag(segment, LABEL_VALUE_TAG)
    if tagged is not None:
        return int(tagged)
    untagged = all(_tag(segmentation.GetSegment(segmentation.GetNthSegmentID(i)), LABEL_VALUE_TAG) is None
                   for i in range(segmentation.GetNumberOfSegments()))
    if untagged and segmentation.GetNumberOfLayers() == 1:
        return int(segment.GetLabelValue())
    return None


def match_segments(segmentation_node, case: CaseResult) -> dict[str, ClassScore]:
    """Segment ID -> the class it shows; segments without a class are left out."""
    segmentation = segmentation_node.GetSegmentation()
    by_name = {c.name.lower(): c for c in case.classes}
    matched: dict[str, ClassScore] = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        label_value = segment_label_value(segmentation, segment_id)
        score = case.class_by_label(label_value) if label_value is not None else None
        if score is None:
            score = by_name.get(segmentation.GetSegment(segment_id).GetName().lower())
        if score is not None:
            matched[segment_id] = score
    return matched


class UncertaintyColoring:
    """Applies, shows and removes uncertainty colours on segmentation nodes of ``scene``."""

    def __init__(self, scene) -> None:
        self.scene = scene

    def apply(self, segmentation_node, case: CaseResult, colormap: str = "viridis",
              value_range: tuple[float, float] = (0.0, 1.0), values: Mapping[str, float] | None = None,
              title: str = LEGEND_TITLE) -> dict[str, ClassScore]:
        """Record each segment's value and show the colours over ``value_range`` with a legend titled ``title``.

        ``values`` maps class names to what is shown (default: each class's U).
        Segments with no class in the case, or no value, get NaN (grey).
        Original colours are recorded once, so applying new scores twice never
        loses them. Returns the matched segments.
        """
        matched = match_segments(segmentation_node, case)
        segmentation = segmentation_node.GetSegmentation()
        for index in range(segmentation.GetNumberOfSegments()):
            segment_id = segmentation.GetNthSegmentID(index)
            segment = segmentation.GetSegment(segment_id)
            if _tag(segment, ORIGINAL_COLOR_TAG) is None:
                segment.SetTag(ORIGINAL_COLOR_TAG, " ".join(repr(c) for c in segment.GetColor()))  # exact: restored as it was
            score = matched.get(segment_id)
            value = math.nan if score is None else values.get(score.name, math.nan) if values is not None else score.uncertainty
            segment.SetTag(UNCERTAINTY_TAG, f"{value:.6f}")
            if score is not None:
                segment.SetTag(LABEL_VALUE_TAG, str(score.label_value))
        segmentation_node.SetAttribute(TITLE_ATTRIBUTE, title)
        self.show_uncertainty(segmentation_node, colormap, value_range)
        return matched

    @staticmethod
    def has_uncertainty(segmentation_node) -> bool:
        segmentation = segmentation_node.GetSegmentation()
        return any(_tag(segmentation.GetSegment(segmentation.GetNthSegmentID(i)), UNCERTAINTY_TAG) is not None
                   for i in range(segmentation.GetNumberOfSegments()))

    @staticmethod
    def is_showing_uncertainty(segmentation_node) -> bool:
        return segmentation_node.GetAttribute(SHOWING_ATTRIBUTE) == "true"

    def show_uncertainty(self, segmentation_node, colormap: str | None = None,
                         value_range: tuple[float, float] | None = None) -> None:
        """Colour the segments by their recorded U and show the legend.

        ``colormap`` and ``value_range`` default to the ones shown last (else viridis over [0, 1]).
        """
        if not self.has_uncertainty(segmentation_node):
            raise ValueError(f"{segmentation_node.GetName()} has no uncertainty scores yet; score it first")
        colormap = colormap or segmentation_node.GetAttribute(COLORMAP_ATTRIBUTE) or "viridis"
        if value_range is None:
            stored = segmentation_node.GetAttribute(RANGE_ATTRIBUTE)
            value_range = tuple(float(v) for v in stored.split()) if stored else (0.0, 1.0)
        low, high = value_range
        if not low < high:
            raise ValueError(f"the colour range must satisfy low < high, got {value_range}")
        segmentation = segmentation_node.GetSegmentation()
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetSegment(segmentation.GetNthSegmentID(index))
            u = _tag(segment, UNCERTAINTY_TAG)
            position = math.nan if u is None else (float(u) - low) / (high - low)
            segment.SetColor(*uncertainty_color(position, colormap))
        display = self._display_node(segmentation_node)
        if not self.is_showing_uncertainty(segmentation_node):
            segmentation_node.SetAttribute(ORIGINAL_COLOR_NODE_ATTRIBUTE, display.GetColorNodeID() or "")
        table = color_table_node(self.scene, f"{segmentation_node.GetName()} scores", colormap, (low, high))
        display.SetAndObserveColorNodeID(table.GetID())
        display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)
        display.SetScalarRange(low, high)
        legend = slicer.vtkSlicerColorLogic.AddDefaultColorLegendDisplayNode(display)
        legend.SetTitleText(segmentation_node.GetAttribute(TITLE_ATTRIBUTE) or LEGEND_TITLE)
        legend.SetUseColorNamesForLabels(False)
        legend.SetNumberOfLabels(5)
        legend.SetLabelFormat("%.2f" if high - low > 0.2 else "%.3f")
        legend.SetVisibility(True)
        segmentation_node.SetAttribute(COLORMAP_ATTRIBUTE, colormap)
        segmentation_node.SetAttribute(RANGE_ATTRIBUTE, f"{low} {high}")
        segmentation_node.SetAttribute(SHOWING_ATTRIBUTE, "true")

    def show_original(self, segmentation_node) -> None:
        """Give every segment back its recorded original colour and hide the legend."""
        segmentation = segmentation_node.GetSegmentation()
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetSegment(segmentation.GetNthSegmentID(index))
            original = _tag(segment, ORIGINAL_COLOR_TAG)
            if original is not None:
                segment.SetColor(*(float(c) for c in original.split()))
        display = self._display_node(segmentation_node)
        if self.is_showing_uncertainty(segmentation_node):
            # "" clears the reference when the segmentation had no colour node of its own.
            display.SetAndObserveColorNodeID(segmentation_node.GetAttribute(ORIGINAL_COLOR_NODE_ATTRIBUTE) or "")
        legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(display)
        if legend is not None:
            legend.SetVisibility(False)
        segmentation_node.SetAttribute(SHOWING_ATTRIBUTE, "false")

    @staticmethod
    def _display_node(segmentation_node):
        if segmentation_node.GetDisplayNode() is None:
            segmentation_node.CreateDefaultDisplayNodes()
        return segmentation_node.GetDisplayNode()
