"""The review workstation as a trame app: Slicer's core and views (trame-slicer), a :class:`~.session.ReviewSession`, the page.

One process serves one results folder to any number of browser tabs (they
share the views, as trame apps do). What the page shows is published to the
trame state after every action (names ``auv_*``); the page's buttons and keys
call :meth:`ReviewApp.on_key` and its neighbours. Errors a reviewer can act on
(a read-only folder, another reviewer's correction, a segment that stands for no
class) come back as a message on the page; the server goes on.

Example:
    >>> app = ReviewApp(ResultsFolder("results"), score="agreement")   # doctest: +SKIP
    >>> app.server.start(port=0, host="127.0.0.1", open_browser=False)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from trame.app import TrameApp, asynchronous

from ..errors import InputError
from ..results import VERDICTS, ResultsFolder
from ..results.colours import UNDEFINED_COLOUR, map_colour
from ..review.colour_plan import ColourPlan
from ..review.queue_table import review_table_content
from ..review.structure_scores import MIN_REFERENCE_CASES
from .explain import explain_structure
from .page import KEY_TRIGGER, build_page
from .scene import CaseScene
from .session import CorrectionChanged, ReviewSession, Shown, UnsavedEdits
from .views import LAYOUT, SlicerViews, register_views

log = logging.getLogger(__name__)

#: Keys 1, 2, 3 -> the verdicts, in the module's order; N, P, U -> the session's moves.
VERDICT_KEYS = dict(zip("123", VERDICTS))
MOVES = {"N": "next", "P": "previous", "U": "next_unreviewed"}
#: Colour stops of the legend's bar.
LEGEND_STOPS = 9


def legend(plan: ColourPlan, colormap: str) -> dict[str, Any]:
    """What the page's legend shows for ``plan``: title, a CSS gradient, the labels under it.

    Example:
        >>> from auvcore.review.colour_plan import ColourPlan
        >>> shown = legend(ColourPlan({}, (0.0, 3.0), "agreement: robust z", relative=True), "viridis")
        >>> shown["labels"], shown["gradient"][:38]
        (['0', '1', '2', '3+'], 'linear-gradient(to right, rgb(68,1,84)')
    """
    def css(rgb: tuple[float, float, float]) -> str:
        return "rgb({},{},{})".format(*(round(255 * c) for c in rgb))

    stops = ", ".join(css(map_colour(i / (LEGEND_STOPS - 1), colormap)) for i in range(LEGEND_STOPS))
    low, high = plan.value_range
    labels = (["0", "1", "2", "3+"] if plan.relative else [f"{low + (high - low) * i / 3:.3g}" for i in range(4)])
    return {"title": plan.title, "gradient": f"linear-gradient(to right, {stops})", "labels": labels,
            "relative": plan.relative, "grey_css": css(UNDEFINED_COLOUR),
            "grey": f"grey: no comparable z (fewer than {MIN_REFERENCE_CASES} cases of its class and modality)"}


class ReviewApp(TrameApp):
    """``auv review``'s app: the session of ``folder`` shown in the page (read-only: no verdicts, no editor)."""

    def __init__(self, folder: ResultsFolder, score: str = "auv", read_only: bool = False, colormap: str = "viridis",
                 server: Any = None) -> None:
        super().__init__(server)
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp

        self.folder, self.read_only, self.colormap = folder, read_only, colormap
        self.server.enable_module(trame_slicer_module)
        self.slicer = SlicerApp()
        register_views(self.slicer, self.server)
        self.layout_manager = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        self.layout_manager.register_layout(LAYOUT, LayoutManager.default_grid_configuration()[LAYOUT])
        self.layout_manager.set_layout(LAYOUT)
        self.views = SlicerViews(self.slicer)
        self.session = ReviewSession(folder, CaseScene(self.slicer.scene), self.views, score, read_only, colormap)
        self.editor = None
        editor_ui = None
        if not read_only:
            from trame_slicer.app.logic import SegmentEditorLogic
            from trame_slicer.app.ui import SegmentEditorUI

            self.editor = SegmentEditorLogic(self.server, self.slicer)

            def editor_ui() -> SegmentEditorUI:  # built inside the Fix tab
                ui = SegmentEditorUI()
                self.editor.set_ui(ui)
                return ui
        self._pending: str | None = None
        self._watched, self._watch_tag = None, 0
        self.state.update({"auv_title": f"AUV review: {folder.root.name}", "auv_read_only": read_only,
                           "auv_explain": {"images": [], "text": "", "problem": "", "busy": ""}, "trame__title": "AUV review"})
        self.page = build_page(self.server, self, self.layout_manager, read_only, editor_ui)
        self.server.trigger(KEY_TRIGGER)(self.on_key)
        self.state.change("auv_tab")(self.on_tab)
        self._publish(self.session.show())

    # --- what the page shows ---

    def _publish(self, shown: Shown) -> None:
        entry = shown.entry
        value = "—" if math.isnan(entry.value) else f"{entry.value:.4g}"
        z = "no comparable z" if math.isnan(entry.z) else f"z {entry.z:.2f}"
        content = review_table_content(self.session.queue)
        queue = [{"position": row[0], "case_id": row[1], "structure": row[2], "value": row[3], "z": row[4],
                  "verdict": row[6], "color": colour} for row, colour in zip(content.rows, content.colors)]
        self.state.update({
            "auv_current": {"position": shown.position, "case_id": entry.case_id, "structure": entry.structure,
                            "title": f"{shown.position} of {shown.total}: {entry.case_id} / {entry.structure}",
                            "detail": f"{self.session.score} {value}, {z}; views at its {shown.where}"
                                      + ("" if entry.judged else f". Not comparable: {entry.why}"),
                            "label": f"label: {shown.label}",
                            "verdict": shown.verdict.describe() if shown.verdict else ""},
            "auv_note": shown.verdict.note if shown.verdict else "",
            "auv_progress": content.summary,
            "auv_queue": queue,
            "auv_legend": legend(shown.plan, self.colormap),
            "auv_explain": {"images": [], "text": "", "problem": "", "busy": ""},
        })
        self._watch_edits()
        if self.state.auv_tab == "fix":
            self._edit_current()

    def _watch_edits(self) -> None:
        """Count the edits of the loaded case's segments (``auv_edits``, shown in the Fix panel) from 0 at its load.

        A stroke reaches the server on its view's own channel and is applied on the mouse's release; the count
        says on the page that it was (a reviewer sees the edit was taken, a test waits for it before Save).
        """
        loaded = self.session.scene.loaded
        segmentation = loaded.segmentation.GetSegmentation() if loaded is not None else None
        if segmentation is self._watched:
            return
        if self._watched is not None:
            self._watched.RemoveObserver(self._watch_tag)
        self._watched, self.state.auv_edits = segmentation, 0
        if segmentation is not None:
            import slicer

            self._watch_tag = segmentation.AddObserver(slicer.vtkSegmentation.SourceRepresentationModified,
                                                       self._on_edited)

    def _on_edited(self, *_: Any) -> None:
        with self.state:
            self.state.auv_edits = (self.state.auv_edits or 0) + 1

    def _edit_current(self) -> None:
        """Point the segment editor at the structure under review (when the Fix panel is open: it costs a redraw)."""
        loaded = self.session.scene.loaded
        if self.editor is not None and loaded is not None:
            self.slicer.segmentation_editor.set_active_segment_id(loaded.segments[self.session.current.structure])

    def _say(self, text: str, colour: str = "info") -> None:
        self.state.update({"auv_message": text, "auv_message_color": colour, "auv_message_open": True})

    # --- what the page asks ---

    def _guarded(self, action) -> None:
        """Run ``action``; what a reviewer can act on comes back as a dialog or a message, the server goes on."""
        with self.state:
            try:
                action()
            except UnsavedEdits as pending:
                self.state.update({"auv_unsaved_open": True,
                                   "auv_unsaved_text": f"{pending.case_id} has edits that are not saved as a correction. "
                                                       "Save them before moving on?"})
            except CorrectionChanged as conflict:
                self.state.update({"auv_conflict_open": True, "auv_conflict_text": conflict.problem})
            except (InputError, ValueError, KeyError) as error:
                self._say(str(error).strip("'\""), "error")

    def on_key(self, key: str, note: str = "") -> None:
        """A key (or its button): N, P, U move; 1, 2, 3 give a verdict with ``note``; E explains; F fixes; S saves."""
        self._guarded(lambda: self._act(str(key).upper(), str(note or "").strip()))

    def on_tab(self, auv_tab: str, **_: Any) -> None:
        """The Fix panel opened: its editor edits the structure under review; it closed: no tool is left on."""
        if self.editor is None:
            return
        if auv_tab == "fix":
            self._edit_current()
        else:
            self.slicer.segmentation_editor.deactivate_effect()

    def on_go_to(self, position: int) -> None:
        """A row of the queue was clicked."""
        self._guarded(lambda: self._move(f"@{int(position)}"))

    def _act(self, key: str, note: str) -> None:
        if key in MOVES:
            self._move(key)
        elif key in VERDICT_KEYS:
            verdict = self.session.record(VERDICT_KEYS[key], note)
            self._say(f"{verdict.case_id} / {verdict.structure}: {verdict.describe()}", "success")
            self._move("N")  # reviewers go on to the next structure, as in the module
        elif key == "E":
            entry = self.session.current
            self.state.auv_tab = "explain"
            self.state.auv_explain = {"images": [], "text": "", "problem": "",
                                      "busy": f"Drawing {entry.structure} of {entry.case_id} as the model saw it..."}
            asynchronous.create_task(self._explain(entry.case_id, entry.structure))
        elif key == "F" and self.editor is not None:
            from trame_slicer.segmentation import SegmentationEffectPaint

            self.state.auv_tab = "fix"
            self._edit_current()
            self.slicer.segmentation_editor.set_active_effect_type(SegmentationEffectPaint)
        elif key == "S" and not self.read_only:
            self._save(note)

    async def _explain(self, case_id: str, structure: str) -> None:
        """Draw the explain pictures in a worker thread (seconds of matplotlib): the views stay responsive."""
        loop = asyncio.get_running_loop()
        figures = await loop.run_in_executor(None, explain_structure, self.folder, case_id, structure)
        current = self.session.current
        if (current.case_id, current.structure) != (case_id, structure):
            return  # the reviewer moved on meanwhile
        with self.state:
            self.state.auv_explain = {"images": [{"title": i.title, "src": i.src} for i in figures.images],
                                      "text": figures.text, "problem": figures.problem, "busy": ""}

    def _move(self, move: str, discard: bool = False) -> None:
        """``move``: N, P, U, or ``@position``; kept as pending while the unsaved-edits dialog asks."""
        self.views.render_axial_first()
        try:
            if move.startswith("@"):
                shown = self.session.go_to(int(move[1:]), discard)
            else:
                shown = getattr(self.session, MOVES[move])(discard)
        except UnsavedEdits:
            self._pending = move
            raise
        self._publish(shown)

    def _save(self, note: str, force: bool = False) -> None:
        saved = self.session.save_correction(note, force)
        if saved is None:
            self._say("Nothing to save: the segmentation is as it was loaded or last saved.")
            return
        changes = ", ".join(f"{c.structure} +{c.added}/-{c.removed} voxels" for c in saved.changes)
        self._say(f"Saved {saved.file}: {changes}; verdict fixed.", "success")
        self._publish(self.session.show())

    def on_unsaved_answer(self, answer: str) -> None:
        """The unsaved-edits dialog (or Discard edits): save, discard or cancel, then the move that waited."""
        pending, self._pending = self._pending, None
        self.state.auv_unsaved_open = False

        def answered() -> None:
            if answer == "save":
                self._save(self.state.auv_note or "")
            if answer == "discard" and pending is None:
                self._publish(self.session.discard_edits())
            if answer in ("save", "discard") and pending is not None:
                self._move(pending, discard=answer == "discard")

        self._guarded(answered)

    def on_conflict_answer(self, answer: str) -> None:
        """Another reviewer's correction came first: save anyway (theirs is kept under a numbered name), or not."""
        self.state.auv_conflict_open = False
        if answer == "save":
            self._guarded(lambda: self._save(self.state.auv_note or "", force=True))
