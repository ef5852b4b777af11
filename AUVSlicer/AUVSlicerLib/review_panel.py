"""The review workstation of the panel: the queue of a cohort's structures, moving through it, and verdicts.

Part of :class:`~AUVSlicerLib.panel.AUVSlicerPanel`, which hands it the
parameter node and the open cohort; like the panel it holds no Qt object of its
own, so the tests drive it through stand-in widgets.

Example (inside Slicer; the panel does this):
    >>> review = ReviewPanel(ui, logic, dialogs, fill_table_widget)   # doctest: +SKIP
    >>> review.connect(); review.setCohort(cohort)                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

#: Key -> method: the review workstation's shortcuts.
SHORTCUTS = {"N": "onNextStructure", "P": "onPreviousStructure", "U": "onNextUnreviewed",
             "1": "onVerdictCorrect", "2": "onVerdictNeedsFix", "3": "onVerdictUnsure", "E": "onExplainStructure"}
#: Method -> its button in the .ui.
BUTTONS = {"onNextStructure": "nextStructureButton", "onPreviousStructure": "previousStructureButton",
           "onNextUnreviewed": "nextUnreviewedButton", "onVerdictCorrect": "correctButton",
           "onVerdictNeedsFix": "needsFixButton", "onVerdictUnsure": "unsureButton",
           "onExplainStructure": "explainStructureButton"}


class ReviewPanel:
    """Queue, moves and verdicts; ``node`` and ``cohort`` are set by the panel that owns it."""

    def __init__(self, ui, logic, dialogs, fill_table: Callable) -> None:
        self.ui, self.logic, self.dialogs, self.fill_table = ui, logic, dialogs, fill_table
        self.node = None
        self.cohort = None
        self.queue = None

    def connect(self) -> None:
        self.ui.startReviewButton.connect("clicked(bool)", self.onStartReview)
        self.ui.reviewQueueTableWidget.connect("itemSelectionChanged()", self.onQueueSelectionChanged)
        for method, button in BUTTONS.items():
            getattr(self.ui, button).connect("clicked(bool)", getattr(self, method))

    def shortcuts(self) -> dict[str, Callable[[], None]]:
        """Key -> action, for the widget to bind as application shortcuts while the module is shown."""
        return {key: getattr(self, method) for key, method in SHORTCUTS.items()}

    def setCohort(self, cohort) -> None:
        """A results folder was opened (or closed: None); any review of the previous one ends."""
        self.cohort, self.queue = cohort, None
        self._fillQueueTable()

    def onStartReview(self) -> None:
        with self.dialogs.errors("Failed to build the review queue."):
            self.queue = self.logic.openReview(self.cohort, self.node.colorScore)
            self._fillQueueTable()
            self._showCurrentStructure()
        self.updateButtons()

    def updateButtons(self) -> None:
        self.ui.startReviewButton.enabled = self.cohort is not None
        for button in set(BUTTONS.values()):
            getattr(self.ui, button).enabled = self.queue is not None

    def _fillQueueTable(self) -> None:
        from .cohort_table import review_table_content

        content = review_table_content(self.queue) if self.queue is not None else None
        current = str(self.queue.position + 1) if self.queue is not None else None
        self.fill_table(self.ui.reviewQueueTableWidget, content, current)
        self.ui.reviewProgressLabel.text = content.summary if content else "No review started."

    def _showCurrentStructure(self) -> None:
        entry = self.queue.current if self.queue else None
        if entry is None:
            self.ui.reviewStructureLabel.text = "The queue is empty: the cohort has no scored structure."
            return
        shown = self.logic.showQueueEntry(self.cohort, entry, self.node.colormap, self.queue.score)
        self.node.inputVolume = shown.loaded.volume_node
        self.node.inputSegmentation = shown.loaded.segmentation_node
        verdict = self.queue.verdict_of(entry)
        self.ui.reviewStructureLabel.text = (
            f"{self.queue.position + 1}. {entry.case_id} / {entry.structure}: {self.queue.score} {entry.value:.4g}, "
            f"z {entry.z:.2f}; views at its {shown.where}" + ("" if entry.judged else f". Its z is not comparable: {entry.why}")
            + (f". Verdict: {verdict.describe()}" if verdict else ""))
        self.ui.reviewNoteLineEdit.text = verdict.note if verdict else ""

    def _moveTo(self, move: Callable) -> None:
        if self.queue is None:
            return
        with self.dialogs.errors("Failed to show the structure."):
            move()
            self._showCurrentStructure()
            self._fillQueueTable()

    def onNextStructure(self) -> None:
        self._moveTo(lambda: self.queue.next())

    def onPreviousStructure(self) -> None:
        self._moveTo(lambda: self.queue.previous())

    def onNextUnreviewed(self) -> None:
        self._moveTo(lambda: self.queue.next_unreviewed())

    def onQueueSelectionChanged(self) -> None:
        selected = selectedFirstCell(self.ui.reviewQueueTableWidget)
        if selected is not None and self.queue is not None and int(selected) - 1 != self.queue.position:
            self._moveTo(lambda: self.queue.go_to(int(selected) - 1))

    def _recordVerdict(self, verdict: str) -> None:
        if self.queue is None or self.queue.current is None:
            return
        with self.dialogs.errors("Failed to record the verdict."):
            self.queue.record(verdict, self.ui.reviewNoteLineEdit.text.strip())
            self.ui.reviewNoteLineEdit.text = ""
        self._moveTo(lambda: self.queue.next())  # reviewers go on to the next structure

    def onExplainStructure(self) -> None:
        """Show how the model sees the current structure: its energy spectrum and its mask logits."""
        entry = self.queue.current if self.queue else None
        if entry is None:
            return
        with self.dialogs.errors("Failed to explain the structure."):
            nodes = self.logic.explainStructure(self.cohort, entry.case_id, entry.structure)
            self.dialogs.info(f"{entry.case_id} / {entry.structure}: energy spectrum of z_c (S = {nodes.S:.4f}) and its mask logits")

    def onVerdictCorrect(self) -> None:
        self._recordVerdict("correct")

    def onVerdictNeedsFix(self) -> None:
        self._recordVerdict("needs_fix")

    def onVerdictUnsure(self) -> None:
        self._recordVerdict("unsure")


def selectedFirstCell(table) -> str | None:
    """The first column's text of a table's selected row, None without a selection."""
    items = table.selectedItems()
    return table.item(items[0].row(), 0).text() if items else None
