"""The module's Explain action: a class's energy spectrum as a plot and its mask logits as a heat-map layer.

Everything comes from what ``auv score`` wrote: the case JSON (the class's S)
and the case's feature cache beside it (``<case>.features.npz``, see
:mod:`auvcore.explain.cache`): the normalised energy distribution p of z_c,
whose entropy over log min(n_c, H·W) is S, and the model's mask logits on the
class's slices, on their own (h, w) grid with its LPS geometry.

No Qt here: the widget shows the returned nodes, e.g.
``slicer.modules.plots.logic().ShowChartInLayout(nodes.chart)`` and
``slicer.util.setSliceViewerLayers(foreground=nodes.logits, foregroundOpacity=0.5)``.

Example (inside Slicer, or headless with the slicer-core wheel):
    >>> view = ExplainView(scene)                                         # doctest: +SKIP
    >>> nodes = view.show("results/cases/ct.json", "liver")               # doctest: +SKIP
    >>> nodes.chart.GetTitle()                                            # doctest: +SKIP
    'liver: energy spectrum of z_c (S = 0.0412, U = 0.9588)'
    >>> view.clear()                                                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import slicer
import vtk
from auvcore.errors import InputError
from auvcore.explain.cache import LOGIT_STEP, ClassArrays, features_path, load_class_arrays
from auvcore.results import ClassRecord, read_case_record
from vtk.util import numpy_support

from .case_loader import remove_node_and_dependents

#: Voxels of the logit volume with no logit (slices without the class, outside the cached crop): below every stored logit, hidden by the display threshold.
NO_LOGIT = -128 * LOGIT_STEP - 8.0
LOGIT_LEGEND_TITLE = "Mask logit (> 0: the model's mask)"
#: A diverging blue-white-red map (matplotlib's RdBu_r ends and middle): the sign of a logit is what matters.
DIVERGING = ((0.0196, 0.1882, 0.3804), (0.9686, 0.9686, 0.9686), (0.4039, 0.0, 0.1216))
TABLE_SIZE = 256
#: Node attribute marking the nodes an Explain made, so the next one replaces them.
EXPLAIN_ATTRIBUTE = "AUVSlicer.Explain"


@dataclass(frozen=True)
class ExplainNodes:
    """The nodes one Explain adds: the spectrum's table, its two series, the chart and the logit volume."""

    table: object
    spectrum: object
    uniform: object
    chart: object
    logits: object | None
    S: float
    limit: float


def read_class(case_json: str | Path, class_name: str) -> tuple[ClassRecord, ClassArrays]:
    """The class's record in the case JSON and its cached arrays; InputError naming the file otherwise."""
    case_json = Path(case_json)
    record = read_case_record(case_json)
    classes = {c.name: c for c in record.classes}
    entry = classes.get(class_name)
    if entry is None:
        raise InputError(case_json, f"has no class {class_name!r}; its classes are: {', '.join(sorted(classes))}")
    if entry.S is None:
        raise InputError(case_json, f"class {class_name!r} has no S: {entry.missing_reason}")
    arrays = load_class_arrays(case_json, entry.id)
    if arrays is None:
        raise InputError(features_path(case_json), f"holds no features of {class_name!r}: score the case again with this "
                                                   "version of auv score, or run `auv explain` on it once")
    return entry, arrays


def _diverging_table(scene, limit: float):
    """A colour table over [-limit, limit], blue through white to red, its entries named by their logit."""
    name = "AUV mask logit"
    node = scene.GetFirstNode(name, "vtkMRMLColorTableNode")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
        node.SetTypeToUser()
    node.SetNumberOfColors(TABLE_SIZE)
    anchors = np.asarray(DIVERGING)
    for index in range(TABLE_SIZE):
        position = index / (TABLE_SIZE - 1) * (len(anchors) - 1)
        low = min(int(position), len(anchors) - 2)
        rgb = anchors[low] * (1 - (position - low)) + anchors[low + 1] * (position - low)
        node.SetColor(index, f"{-limit + 2 * limit * index / (TABLE_SIZE - 1):.1f}", *rgb, 1.0)
    node.GetLookupTable().SetRange(-limit, limit)
    return node


def logit_volume_array(arrays: ClassArrays) -> tuple[np.ndarray, int]:
    """(K, h, w) float32 logits over the class's slice range, NO_LOGIT where none; and the first slice index."""
    assert arrays.logits is not None
    first, last = int(arrays.slices.min()), int(arrays.slices.max())
    volume = np.full((last - first + 1, *arrays.logits.shape[1:]), NO_LOGIT, dtype=np.float32)
    volume[arrays.slices - first] = np.nan_to_num(arrays.logits, nan=NO_LOGIT)
    return volume, first


def ijk_to_ras(geometry: dict[str, np.ndarray], first_slice: int) -> vtk.vtkMatrix4x4:
    """The logit grid's IJK -> RAS matrix, starting at ``first_slice`` (LPS geometry, x and y flipped)."""
    direction = np.asarray(geometry["direction"], dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(geometry["spacing"], dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = np.asarray(geometry["origin"], dtype=np.float64) + direction @ (spacing * (0, 0, first_slice))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, ras[row, column])
    return matrix


class ExplainView:
    """Adds (and replaces) the Explain nodes of one class in ``scene``."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.nodes: ExplainNodes | None = None

    def show(self, case_json: str | Path, class_name: str) -> ExplainNodes:
        """Remove the previous Explain's nodes, then add the spectrum plot and the logit layer of ``class_name``."""
        entry, arrays = read_class(case_json, class_name)
        self.clear()
        case_id = Path(case_json).name.removesuffix(".json")
        S = float(entry.S)
        table, spectrum, uniform, chart = self._spectrum_plot(case_id, class_name, arrays.spectrum, S)
        logits, limit = (None, 0.0) if arrays.logits is None or arrays.geometry is None else self._logit_layer(case_id, class_name, arrays)
        self.nodes = ExplainNodes(table, spectrum, uniform, chart, logits, S, limit)
        return self.nodes

    def clear(self) -> None:
        """Remove the nodes the last Explain added (those still in the scene)."""
        if self.nodes is None:
            return
        for node in (self.nodes.chart, self.nodes.spectrum, self.nodes.uniform, self.nodes.table, self.nodes.logits):
            if node is not None and node.GetScene() is self.scene:
                remove_node_and_dependents(self.scene, node)
        self.nodes = None

    def _add(self, node_class: str, name: str):
        node = self.scene.AddNewNodeByClass(node_class, name)
        node.SetAttribute(EXPLAIN_ATTRIBUTE, "true")
        return node

    def _spectrum_plot(self, case_id: str, class_name: str, p: np.ndarray, S: float):
        table = self._add("vtkMRMLTableNode", f"{case_id} {class_name} energy spectrum")
        columns = (("direction j", np.arange(1, p.size + 1, dtype=np.float64)), ("share of energy p_j", p.astype(np.float64)),
                   ("equal energy 1/n_c", np.full(p.size, 1.0 / max(p.size, 1))))
        for name, values in columns:
            array = numpy_support.numpy_to_vtk(values, deep=True)
            array.SetName(name)
            table.AddColumn(array)
        series = []
        for column, label, style in ((1, "p_j = σ_j² / Σ σ²", "bar"), (2, f"equal energy 1/{p.size} (S = 1)", "line")):
            node = self._add("vtkMRMLPlotSeriesNode", label)
            node.SetAndObserveTableNodeID(table.GetID())
            node.SetXColumnName(columns[0][0])
            node.SetYColumnName(columns[column][0])
            # The scatter types place points at the x column (j from 1); Bar and Line ignore it and count from 0.
            node.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatterBar if style == "bar"
                             else slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
            if style == "line":
                node.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleDash)
                node.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
                node.SetColor(0.33, 0.66, 0.41)
            else:
                node.SetColor(0.30, 0.45, 0.69)
            series.append(node)
        chart = self._add("vtkMRMLPlotChartNode", f"{case_id} {class_name} energy spectrum")
        for node in series:
            chart.AddAndObservePlotSeriesNodeID(node.GetID())
        chart.SetTitle(f"{class_name}: energy spectrum of z_c (S = {S:.4f}, U = {1 - S:.4f})")
        chart.SetXAxisTitle(f"singular direction j of z_c, largest energy first (n_c = {p.size} slices)")
        chart.SetYAxisTitle("share of the energy p_j (log scale)")
        chart.SetYAxisLogScale(True)
        chart.SetLegendVisibility(True)
        return table, series[0], series[1], chart

    def _logit_layer(self, case_id: str, class_name: str, arrays: ClassArrays):
        values, first = logit_volume_array(arrays)
        finite = arrays.logits[np.isfinite(arrays.logits)]
        limit = max(float(np.percentile(np.abs(finite), 99)), 1.0) if finite.size else 1.0
        image = vtk.vtkImageData()
        image.SetDimensions(values.shape[2], values.shape[1], values.shape[0])
        image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(values.ravel(), deep=True, array_type=vtk.VTK_FLOAT))
        node = self._add("vtkMRMLScalarVolumeNode", f"{case_id} {class_name} mask logits")
        node.SetAndObserveImageData(image)
        node.SetIJKToRASMatrix(ijk_to_ras(arrays.geometry, first))
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.SetAndObserveColorNodeID(_diverging_table(self.scene, limit).GetID())
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(-limit, limit)
        display.SetApplyThreshold(True)
        display.SetLowerThreshold(NO_LOGIT + 1.0)
        display.SetUpperThreshold(float(np.finfo(np.float32).max))
        legend = slicer.vtkSlicerColorLogic.AddDefaultColorLegendDisplayNode(display)
        legend.SetTitleText(LOGIT_LEGEND_TITLE)
        legend.SetUseColorNamesForLabels(False)
        legend.SetNumberOfLabels(5)
        legend.SetLabelFormat("%.0f")
        legend.SetVisibility(True)
        return node, limit
