"""The workstation's page (trame + Vuetify 3, laid out as trame-slicer's own apps are): what is where, and its keys.

Left, a drawer: the structure shown (its score, where the views are, its
verdict, the note and the verdict and move buttons), then three tabs: *Queue*
(the colour legend and the queue), *Explain* and *Fix* (trame-slicer's segment
editor on the structure, Save); in the middle, Slicer's views. A read-only page has neither verdicts nor Fix. The page holds no logic:
it shows the state :mod:`.app` publishes (every name starts with ``auv_``) and
calls its handlers; the keys (N, P, U, 1, 2, 3, E, F, S) are sent to the
server's ``auv_key`` trigger with the note, unless a text field has the focus
(Escape or Enter leaves it).

Example (inside the app):
    >>> build_page(server, handlers, layout_manager, read_only=False, segment_editor_ui=SegmentEditorUI)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from trame.ui.vuetify3 import VAppLayout
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3

#: The keys the page sends to the server (the Slicer module's review shortcuts, without its Ctrl+B).
KEYS = ("N", "P", "U", "1", "2", "3", "E", "F", "S")
KEY_TRIGGER = "auv_key"
DRAWER_WIDTH = 430

KEY_SCRIPT = """
(() => {
  if (window.auvReviewKeys) { return; }
  window.auvReviewKeys = true;
  const keys = new Set(%s);
  window.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    const target = event.target;
    if (target && (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable)) {
      if (event.key === "Escape" || event.key === "Enter") { target.blur(); }
      return;
    }
    const key = event.key.length === 1 ? event.key.toUpperCase() : "";
    if (!keys.has(key) || !window.trame) { return; }
    event.preventDefault();
    window.trame.trigger("%s", [key, window.trame.state.get("auv_note") || ""]);
  });
})();
""" % (list(KEYS), KEY_TRIGGER)


class PageHandlers(Protocol):
    """What the page's buttons call (the app's methods)."""

    def on_key(self, key: str, note: str = "") -> None: ...
    def on_go_to(self, position: int) -> None: ...
    def on_unsaved_answer(self, answer: str) -> None: ...
    def on_conflict_answer(self, answer: str) -> None: ...


def _key_button(text: str, key: str, handlers: PageHandlers, **kwargs: Any) -> None:
    v3.VBtn(f"{text} ({key})", click=(handlers.on_key, f"['{key}', auv_note]"), size="small", classes="ma-1",
            **kwargs)


def _current_card(handlers: PageHandlers, read_only: bool) -> None:
    with v3.VCard(variant="flat", classes="pa-2"):
        html.Div("{{ auv_current.title }}", classes="text-subtitle-1 font-weight-bold", id="auv-current-title")
        html.Div("{{ auv_current.detail }}", classes="text-body-2", id="auv-current-detail")
        html.Div("{{ auv_current.label }}", classes="text-caption text-medium-emphasis", id="auv-current-label")
        html.Div("Verdict: {{ auv_current.verdict }}", v_if="auv_current.verdict", classes="text-body-2 mt-1",
                 id="auv-current-verdict")
        if not read_only:
            v3.VTextField(v_model=("auv_note", ""), label="Note (Esc or Enter leaves the field, then 1, 2 or 3)",
                          density="compact", hide_details=True, classes="mt-2", id="auv-note")
            with html.Div(classes="d-flex flex-wrap mt-1"):
                _key_button("Correct", "1", handlers, color="green-darken-2", id="auv-correct")
                _key_button("Needs fix", "2", handlers, color="red-darken-2", id="auv-needs-fix")
                _key_button("Unsure", "3", handlers, color="orange-darken-2", id="auv-unsure")
        with html.Div(classes="d-flex flex-wrap"):
            _key_button("Previous", "P", handlers, variant="tonal", id="auv-previous")
            _key_button("Next", "N", handlers, variant="tonal", id="auv-next")
            _key_button("Next unreviewed", "U", handlers, variant="tonal", id="auv-next-unreviewed")


def _legend() -> None:
    with html.Div(classes="pa-2", id="auv-legend"):
        html.Div("{{ auv_legend.title }}", classes="text-caption")
        html.Div(style=("{height: '14px', borderRadius: '3px', background: auv_legend.gradient}",), classes="mt-1")
        with html.Div(classes="d-flex justify-space-between text-caption"):
            html.Span("{{ label }}", v_for="label in auv_legend.labels", key="label")
        with html.Div(classes="d-flex align-center text-caption mt-1", v_if="auv_legend.relative"):
            html.Span(style="display:inline-block;width:14px;height:14px;border-radius:3px;background:"
                            "rgb(153,153,153)", classes="mr-2")
            html.Span("{{ auv_legend.grey }}")


def _queue(handlers: PageHandlers) -> None:
    html.Div("{{ auv_progress }}", classes="text-caption px-2", id="auv-progress")
    with v3.VTable(density="compact", fixed_header=True, height="calc(100vh - 470px)", hover=True,
                   classes="text-caption", id="auv-queue"):
        with html.Thead(), html.Tr():
            for title in ("#", "case", "structure", "value", "z", "verdict"):
                html.Th(title)
        with html.Tbody():
            with html.Tr(v_for="row in auv_queue", key="row.position",
                         click=(handlers.on_go_to, "[row.position - 1]"),
                         style=("{cursor: 'pointer', color: row.color || undefined, "
                                "background: row.position === auv_current.position ? 'rgba(120,160,255,0.18)' : undefined}",)):
                for cell in ("position", "case_id", "structure", "value", "z", "verdict"):
                    html.Td(f"{{{{ row.{cell} }}}}")


def _explain(handlers: PageHandlers) -> None:
    with html.Div(classes="pa-2", id="auv-explain"):
        _key_button("Explain this structure", "E", handlers, variant="tonal")
        v3.VProgressLinear(v_if="auv_explain.busy", indeterminate=True, classes="mt-2")
        html.Div("{{ auv_explain.busy }}", v_if="auv_explain.busy", classes="text-caption mt-1")
        html.Div("{{ auv_explain.problem }}", v_if="auv_explain.problem", classes="text-body-2 text-error mt-2",
                 id="auv-explain-problem")
        with html.Div(v_for="image in auv_explain.images", key="image.title", classes="mt-2"):
            html.Div("{{ image.title }}", classes="text-caption font-weight-bold")
            html.Img(src=("image.src",), style="width: 100%;", alt=("image.title",))
        html.Pre("{{ auv_explain.text }}", v_if="auv_explain.text", classes="text-caption mt-2")


def _fix(handlers: PageHandlers, segment_editor_ui: Callable[..., Any]) -> None:
    with html.Div(classes="d-flex flex-column", style="height: calc(100vh - 330px); overflow-y: auto;",
                  id="auv-fix"):
        html.Div("Edit {{ auv_current.structure }} of {{ auv_current.case_id }} on the views; Save (S) writes "
                 "corrections/{{ auv_current.case_id }} and the verdict fixed.", classes="text-caption pa-2")
        html.Div("{{ auv_edits }} edits since the case was opened", classes="text-caption px-2", id="auv-edits")
        with html.Div(classes="d-flex flex-wrap align-center px-2") as buttons:
            _key_button("Save correction", "S", handlers, color="primary", id="auv-save")
            v3.VBtn("Discard edits", click=(handlers.on_unsaved_answer, "['discard']"), size="small", classes="ma-1",
                    variant="tonal", id="auv-discard")
        editor = segment_editor_ui()
        with buttons:
            editor.build_undo_redo_buttons()


def _dialogs(handlers: PageHandlers) -> None:
    with v3.VDialog(v_model=("auv_unsaved_open", False), max_width=520, persistent=True), v3.VCard(id="auv-unsaved"):
        v3.VCardTitle("Unsaved edits")
        v3.VCardText("{{ auv_unsaved_text }}")
        with v3.VCardActions():
            v3.VSpacer()
            v3.VBtn("Save correction", click=(handlers.on_unsaved_answer, "['save']"), color="primary")
            v3.VBtn("Discard", click=(handlers.on_unsaved_answer, "['discard']"))
            v3.VBtn("Cancel", click=(handlers.on_unsaved_answer, "['cancel']"))
    with v3.VDialog(v_model=("auv_conflict_open", False), max_width=560, persistent=True), v3.VCard(id="auv-conflict"):
        v3.VCardTitle("Another reviewer saved a correction")
        v3.VCardText("{{ auv_conflict_text }}")
        with v3.VCardActions():
            v3.VSpacer()
            v3.VBtn("Save anyway", click=(handlers.on_conflict_answer, "['save']"), color="primary")
            v3.VBtn("Cancel", click=(handlers.on_conflict_answer, "['cancel']"))
    v3.VSnackbar("{{ auv_message }}", v_model=("auv_message_open", False), color=("auv_message_color", "info"),
                 timeout=6000, location="bottom", id="auv-message")


def build_page(server, handlers: PageHandlers, layout_manager, read_only: bool,
               segment_editor_ui: Callable[..., Any] | None) -> VAppLayout:
    """The page: app bar, the drawer's tabs, the views; ``segment_editor_ui`` builds the editor and returns it (None:
    read-only); its undo and redo buttons go beside Save."""
    with VAppLayout(server, theme="dark") as layout:
        client.Style("html { overflow-y: hidden; } .v-table td, .v-table th { padding: 0 6px !important; }")
        client.Script(KEY_SCRIPT)
        with v3.VAppBar(density="compact"):
            v3.VToolbarTitle("{{ auv_title }}")
            v3.VChip("read-only: nothing is written", v_if="auv_read_only", color="orange", size="small",
                     classes="mr-2", id="auv-read-only")
            html.Span("{{ auv_progress }}", classes="text-caption mr-4")
        with v3.VNavigationDrawer(permanent=True, width=DRAWER_WIDTH, location="left"):
            _current_card(handlers, read_only)
            with v3.VTabs(v_model=("auv_tab", "queue"), density="compact", grow=True):
                v3.VTab("Queue", value="queue", id="auv-tab-queue")
                v3.VTab("Explain", value="explain", id="auv-tab-explain")
                if not read_only:
                    v3.VTab("Fix", value="fix", id="auv-tab-fix")
            with v3.VWindow(v_model=("auv_tab",)):
                with v3.VWindowItem(value="queue"):
                    _legend()
                    _queue(handlers)
                with v3.VWindowItem(value="explain"):
                    _explain(handlers)
                if segment_editor_ui is not None:
                    with v3.VWindowItem(value="fix"):
                        _fix(handlers, segment_editor_ui)
        with v3.VMain(), html.Div(classes="d-flex fill-height", id="auv-views"):
            layout_manager.initialize_layout_grid(layout)
        _dialogs(handlers)
    return layout
