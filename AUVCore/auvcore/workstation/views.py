"""The workstation's Slicer views (trame-slicer's): axial, coronal, sagittal and 3D, showing one case at a time.

Implements :class:`~.session.CaseViews` on a trame-slicer ``SlicerApp``: a new
case goes to every slice view's background, fitted, and becomes the active
segmentation of trame-slicer's segmentation editor (which the Fix panel edits,
and which keeps its closed surfaces in the 3D view); moving to a
structure centres every view on it (Slicer's own ``JumpAllSlices``, as the
module does). :func:`register_views` makes the views (remote-rendered, one
frame per render) and marks each in the page (``#auv-view-<name>``: Red, Green,
Yellow, ThreeD), so a browser test finds the axial view's image.

Example (inside the app):
    >>> views = SlicerViews(slicer_app)                      # doctest: +SKIP
    >>> views.show_case(loaded.volume, loaded.segmentation)  # doctest: +SKIP
    >>> views.look_at((12.0, -40.5, 101.0))                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import slicer

#: The layout of the page's views: the axial view large, the 3D, coronal and sagittal views beside it.
LAYOUT = "Axial Primary"
#: The slice views' names (singleton tags) by orientation.
VIEW_NAMES = {"axial": "Red", "coronal": "Green", "sagittal": "Yellow", "3d": "ThreeD"}
#: Seconds between a new case's slice views and its 3D surfaces (making them holds the server for up to a second:
#: the slice views' frames go out first).
SURFACES_AFTER_S = 1.0
#: JPEG quality of every frame of a view: interactive and still alike, so one render is one frame, none re-sent later.
FRAME_QUALITY = 90


def register_views(slicer_app, server) -> None:
    """Make the views remote-rendered in ``server``'s page, each marked ``#auv-view-<name>``."""
    from trame.widgets import html
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui
    from trame_slicer.rca_view import register_rca_factories

    def marked(gutter: Callable) -> Callable:
        def populate(page_server, view_id: str, view) -> None:
            html.Div(id=f"auv-view-{view.get_singleton_tag()}", style="display: none;")
            gutter(page_server, view_id, view)
        return populate

    register_rca_factories(slicer_app.view_manager, server, slice_view_ui_f=marked(create_vertical_slice_view_gutter_ui),
                           three_d_view_ui_f=marked(create_vertical_view_gutter_ui), interactive_quality=FRAME_QUALITY)


class SlicerViews:
    """Shows cases in the views of a trame-slicer ``SlicerApp``, through its segmentation editor.

    A new case's 3D surfaces take longest to make (closed-surface conversion), so the
    slice views show it first and the surfaces follow :data:`SURFACES_AFTER_S` later
    (when the server's event loop runs; at once without one).
    """

    def __init__(self, slicer_app) -> None:
        self.app = slicer_app

    def show_case(self, volume_node, segmentation_node) -> None:
        editor = self.app.segmentation_editor
        editor.set_surface_representation_enabled(False)
        self.app.display_manager.show_volume_in_slice_background(volume_node)
        self.app.display_manager.show_volume_in_slice_foreground(None)
        editor.set_active_segmentation(segmentation_node, volume_node)
        segmentation_node.GetDisplayNode().SetVisibility(True)
        for view in self.app.view_manager.get_slice_views():
            view.set_visible_in_3d(False)  # moving through slices then redraws the slice views only
            view.fit_view_to_content()
        self._later(lambda: self._show_surfaces(segmentation_node))

    def _show_surfaces(self, segmentation_node) -> None:
        editor = self.app.segmentation_editor
        if editor.active_segmentation_node is segmentation_node:  # not another case since
            editor.set_surface_representation_enabled(True)
            for view in self.app.view_manager.get_threed_views():
                view.reset_view()

    @staticmethod
    def _later(action: Callable[[], None]) -> None:
        try:
            asyncio.get_running_loop().call_later(SURFACES_AFTER_S, action)
        except RuntimeError:  # no event loop (a script): now
            action()

    def render_axial_first(self) -> None:
        """Ask the axial view to render before the others the next change will touch: it is the one a reviewer reads
        (the views render one after another, in the order they were asked)."""
        view = self.app.view_manager.get_view(VIEW_NAMES["axial"])
        if view is not None:
            view.schedule_render()

    def look_at(self, ras: tuple[float, float, float]) -> None:
        slicer.vtkMRMLSliceNode.JumpAllSlices(self.app.scene, *ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
