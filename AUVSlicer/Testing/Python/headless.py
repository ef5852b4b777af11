"""A real MRML scene without the Slicer application, set up as Slicer's modules set it up.

What the ``slicer-core`` wheel needs, found by trying:

* a plain ``slicer.vtkMRMLScene()`` creates volume, segmentation, table, plot
  and colour table nodes;
* ``vtkSlicerColorLogic`` on the scene registers the colour legend display node
  class (without it ``AddDefaultColorLegendDisplayNode`` fails) and adds the
  built-in colour tables (label maps look for "Labels"); without the
  application it logs once that it cannot find the colour files, which only
  the full application ships;
* ``vtkSlicerSegmentationsModuleLogic`` on the scene registers the
  representation converters (label map <-> closed surface). A segmentation
  copies the converters when it is created, so this must come before any
  segmentation node exists, as it does in Slicer;
* segmentation import/export are static methods of that logic class, and it
  registers ``vtkMRMLSegmentEditorNode`` (the Segment Editor's parameter node);
* ``slicer.util.loadVolume`` needs ``slicer.app``, so files are read with
  storage nodes (which is what the module's loader does anyway).

Example:
    >>> headless = HeadlessScene()
    >>> headless.scene.AddNewNodeByClass("vtkMRMLColorLegendDisplayNode") is not None
    True
    >>> headless.close()
"""

from __future__ import annotations

import slicer


class HeadlessScene:
    """A scene (new, or ``scene``) with the colour and segmentation logics attached; also set as ``slicer.mrmlScene``."""

    def __init__(self, scene=None) -> None:
        self.scene = scene if scene is not None else slicer.vtkMRMLScene()
        self.color_logic = slicer.vtkSlicerColorLogic()
        self.color_logic.SetMRMLScene(self.scene)
        self.segmentations_logic = slicer.vtkSlicerSegmentationsModuleLogic()
        self.segmentations_logic.SetMRMLScene(self.scene)
        slicer.mrmlScene = self.scene

    def close(self) -> None:
        self.segmentations_logic.SetMRMLScene(None)
        self.color_logic.SetMRMLScene(None)
        self.scene.Clear(True)


def plot_view_x(series_node) -> list[float]:
    """Where Slicer's plot view draws a series' points along x (``qMRMLPlotView.cxx``, v5.10.0 and v5.12.3): at the
    x column's values only for the types that require one (``vtkMRMLPlotSeriesNode::IsXColumnRequired``: Scatter
    and ScatterBar); Line and Bar use the row index 0, 1, 2 ... whatever the x column holds."""
    table = series_node.GetTableNode().GetTable()
    if not series_node.IsXColumnRequired():
        return [float(row) for row in range(table.GetNumberOfRows())]
    column = table.GetColumnByName(series_node.GetXColumnName())
    return [float(column.GetValue(row)) for row in range(table.GetNumberOfRows())]


class LayoutManager:
    """``slicer.app.layoutManager()`` as far as ``setLayout`` goes: ``qMRMLLayoutManager::setLayout`` writes the
    scene's layout node's view arrangement (the layout descriptions themselves are the application's)."""

    def __init__(self, layout_node) -> None:
        self.layout_node = layout_node

    def layout(self) -> int:
        return self.layout_node.GetViewArrangement()

    def setLayout(self, layout: int) -> None:
        if layout != self.layout():
            self.layout_node.RemoveAllMaximizedViewNodes()
            self.layout_node.SetViewArrangement(layout)


def paint_voxels(scene, editor_node, voxels, add: bool = True) -> None:
    """Add the voxels of ``voxels`` (a boolean array [k, j, i] on the editor's source volume's grid) to the Segment
    Editor's selected segment, or remove them, as its Paint and Erase effects do: ``vtkSlicerSegmentEditorLogic::
    ModifySegmentByLabelmap`` with the editor node's masking (paint everywhere, overwrite the other segments)."""
    import numpy as np
    import vtk
    from vtk.util import numpy_support

    logic = slicer.vtkSlicerSegmentEditorLogic()
    logic.SetMRMLScene(scene)
    logic.SetSegmentEditorNode(editor_node)
    modifier = slicer.vtkOrientedImageData()
    depth, rows, columns = voxels.shape
    modifier.SetExtent(0, columns - 1, 0, rows - 1, 0, depth - 1)
    ijk_to_ras = vtk.vtkMatrix4x4()
    editor_node.GetSourceVolumeNode().GetIJKToRASMatrix(ijk_to_ras)
    modifier.SetImageToWorldMatrix(ijk_to_ras)
    modifier.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.asarray(voxels, np.uint8).ravel(), deep=True))
    mode = logic.ModificationModeAdd if add else logic.ModificationModeRemove
    try:
        logic.ModifySegmentByLabelmap(editor_node.GetSegmentationNode(), editor_node.GetSelectedSegmentID(), modifier,
                                      mode, False, False)
    finally:
        logic.SetSegmentEditorNode(None)
        logic.SetMRMLScene(None)
