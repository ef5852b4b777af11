"""Per-class results of a case as a table node and a bar chart of U per class.

The table has one row per class of the case: name, label value, S, U, the
rows (slices) used, and the reason where S is undefined; then one column per
extra scorer the case was scored with (``auv score --scorers``) and, where a
scorer has per-slice values, where the class's worst slice lies (its RAS S
coordinate, to type into an axial view's offset). The chart plots U per
class at its label value: a scatter-bar series, the bar type that honours the
x column (``PlotTypeBar`` ignores it and puts bars at 0, 1, 2 ...). Slicer's
plot view shows a bar's class name only as its tooltip (``SetLabelColumnName``
feeds nothing else in ``qMRMLPlotView``), so the x-axis title says so and the
table gives each label value's name.
Classes without a score are in the table only, so the chart never draws a bar
for a value that does not exist.

Example (with the slicer-core wheel or inside Slicer):
    >>> table = fill_results_table(scene, case_result)        # doctest: +SKIP
    >>> chart = uncertainty_bar_chart(scene, case_result)     # doctest: +SKIP
"""

from __future__ import annotations

import slicer
import vtk
from auvcore.errors import InputError
from auvcore.scorers import SCORERS

from .case_result import CaseResult
from .worst_slices import worst_slices

#: The chart's x axis: bars stand at label values; their names are tooltips only, and in the table.
CHART_X_TITLE = "Label value (hover a bar for its class name; the table names every label value)"
#: The per-slice scorers a structure's worst slice is taken from, in order of preference
#: (the table's worst-slice column, and the review when the chosen score has no per-slice values).
PER_SLICE_SCORERS = ("agreement", "consistency", "boundary_gradient", "fisher", "contrast", "homogeneity",
                     "boundary_logits", "boundary_distance")


def _table_node(scene, name: str, existing=None):
    node = existing or scene.GetFirstNode(name, "vtkMRMLTableNode")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    node.RemoveAllColumns()
    return node


def _add_columns(node, spec: dict[str, type]) -> dict[str, vtk.vtkAbstractArray]:
    arrays: dict[str, vtk.vtkAbstractArray] = {}
    for name, kind in spec.items():
        array = {str: vtk.vtkStringArray, int: vtk.vtkIntArray, float: vtk.vtkDoubleArray}[kind]()
        array.SetName(name)
        node.AddColumn(array)
        arrays[name] = array
    return arrays


def fill_results_table(scene, case: CaseResult, table_node=None):
    """The per-class table of ``case`` in ``table_node`` (default: a node named after the case)."""
    node = _table_node(scene, f"AUV classes {case.case_id}", table_node)
    scorers = [name for name in SCORERS if name in case.scores]
    per_slice = next((n for n in PER_SLICE_SCORERS if n in case.record.scores and case.record.scores[n].slices), None)
    worst_column = f"Worst {per_slice} slice (RAS S, mm)"
    # Every column exists before the first row: a column added to a filled table starts filled with zeros.
    columns = _add_columns(node, {"Class": str, "Label value": int, "S": float, "U": float, "Rows": int,
                                  "Missing reason": str, **dict.fromkeys(scorers, float),
                                  **({worst_column: float} if per_slice else {})})
    for score in case.classes:
        columns["Class"].InsertNextValue(score.name)
        columns["Label value"].InsertNextValue(score.label_value)
        columns["S"].InsertNextValue(score.S)
        columns["U"].InsertNextValue(score.uncertainty)
        columns["Rows"].InsertNextValue(score.rows)
        columns["Missing reason"].InsertNextValue(score.missing_reason or "")
        for name in scorers:
            columns[name].InsertNextValue(case.scores[name].get(score.name, float("nan")))
        if per_slice:
            columns[worst_column].InsertNextValue(_worst_slice_s(case, score.name, per_slice))
    node.SetAttribute("AUVSlicer.CaseID", case.case_id)
    node.SetUseColumnTitleAsColumnHeader(True)
    node.Modified()
    return node


def _worst_slice_s(case: CaseResult, class_name: str, scorer: str) -> float:
    try:
        flags = worst_slices(case.record, class_name, scorer, count=1)
    except InputError:  # no per-slice value for this class (e.g. it spans one slice)
        return float("nan")
    return flags[0].ras[2] if flags else float("nan")


def uncertainty_bar_chart(scene, case: CaseResult, chart_node=None):
    """A bar chart node of U per scored class, with its data table and series nodes."""
    name = f"AUV uncertainty {case.case_id}"
    table = _table_node(scene, name + " chart data")
    columns = _add_columns(table, {"Class": str, "Label value": int, "U": float})
    for score in case.scored_classes:
        columns["Class"].InsertNextValue(score.name)
        columns["Label value"].InsertNextValue(score.label_value)
        columns["U"].InsertNextValue(score.uncertainty)
    table.Modified()

    series = scene.GetFirstNode(name + " series", "vtkMRMLPlotSeriesNode")
    if series is None:
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name + " series")
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatterBar)
    series.SetXColumnName("Label value")
    series.SetYColumnName("U")
    series.SetLabelColumnName("Class")
    series.SetColor(0.2297, 0.3224, 0.5457)

    chart = chart_node or scene.GetFirstNode(name, "vtkMRMLPlotChartNode")
    if chart is None:
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    chart.RemoveAllPlotSeriesNodeIDs()
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(f"Uncertainty U = 1 - S per class, {case.case_id}")
    chart.SetXAxisTitle(CHART_X_TITLE)
    chart.SetYAxisTitle("U")
    chart.SetYAxisRangeAuto(False)
    chart.SetYAxisRange(0.0, 1.0)
    chart.SetLegendVisibility(False)
    return chart
