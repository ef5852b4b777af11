"""The review workstation of the panel: the queue of a cohort's structures, moving through it, verdicts, and fixes.

Part of :class:`~AUVSlicerLib.panel.AUVSlicerPanel`, which hands it the
parameter node and the open cohort; like the panel it holds no Qt object of its
own, so the tests drive it through stand-in widgets.

The Fix step: *Fix* (``F``) opens the current structure's segment in Slicer's
Segment Editor, on the case's volume, at its worst slice, and switches to that
module; the panel is then out of sight, so *Save correction* (``S``) and *Back to
review* (``Ctrl+B``) stay active as application shortcuts while the fix is under
way (:data:`FIX_SHORTCUTS`: keys neither the Segment Editor nor the slice views
use), and the widget shows a *Back to review* button in the status bar. Moving on
(another structure, case or folder, or a verdict) with unsaved edits asks first:
save, discard or cancel.

The proposal (cases scored with the label-independent probe, ``--scorers all``): *Proposal* (``D``) shows
and hides where the label and the model disagree on the current structure, as an overlay of two segments
(:mod:`~AUVSlicerLib.proposal_view`), kept on while moving through the queue; for a case scored without the
probe the panel says so and which command makes one. *Accept proposal* saves the model's outline of the
structure as the case's correction (the verdict ``fixed``, marked as an accepted proposal); *Edit proposal*
puts it into the case's segmentation and opens the Fix step on it, where *Save correction* saves the edited
outline. Rejecting it is hiding it, or giving a verdict.

Example (inside Slicer; the panel does this):
    >>> review = ReviewPanel(ui, logic, dialogs, fill_table_widget)   # doctest: +SKIP
    >>> review.connect(); review.setCohort(cohort)                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

#: This module's name, which *Back to review* selects.
MODULE_NAME = "AUVSlicer"
#: Key -> method: the review workstation's shortcuts (Qt key sequences).
SHORTCUTS = {"N": "onNextStructure", "P": "onPreviousStructure", "U": "onNextUnreviewed",
             "1": "onVerdictCorrect", "2": "onVerdictNeedsFix", "3": "onVerdictUnsure", "E": "onExplainStructure",
             "F": "onFixStructure", "S": "onSaveCorrection", "Ctrl+B": "onBackToReview", "D": "onToggleProposal"}
#: The shortcuts that stay active while a fix is under way in the Segment Editor. Its own keys are 0-9 and
#: Shift+0-9, Escape, Space, Z, Y, Q, W, /, *, comma, period, < and > (qMRMLSegmentEditorWidget::
#: installKeyboardShortcuts, v5.10.0 and v5.12.3); the slice views' are f, b, g, t, v, V and r
#: (vtkMRMLSliceIntersectionWidget); the main window's Ctrl+O, S, W, Z, Y, F, H, 0-6. D (Proposal) is none of them,
#: nor a key of the 3D views (vtkMRMLCameraWidget: the keypad, arrows, +, -, Home, End, Insert, PageDown).
FIX_SHORTCUTS = ("S", "Ctrl+B")
#: Method -> its button in the .ui.
BUTTONS = {"onNextStructure": "nextStructureButton", "onPreviousStructure": "previousStructureButton",
           "onNextUnreviewed": "nextUnreviewedButton", "onVerdictCorrect": "correctButton",
           "onVerdictNeedsFix": "needsFixButton", "onVerdictUnsure": "unsureButton",
           "onExplainStructure": "explainStructureButton", "onFixStructure": "fixStructureButton",
           "onSaveCorrection": "saveCorrectionButton", "onBackToReview": "backToReviewButton",
           "onToggleProposal": "proposalButton", "onAcceptProposal": "acceptProposalButton",
           "onEditProposal": "editProposalButton"}
#: The buttons that need a queue (the others: Save needs an open cohort, Back a fix under way).
QUEUE_BUTTONS = ("nextStructureButton", "previousStructureButton", "nextUnreviewedButton", "correctButton",
                 "needsFixButton", "unsureButton", "explainStructureButton", "fixStructureButton", "proposalButton",
                 "acceptProposalButton", "editProposalButton")
#: The verdict a saved correction records (auvcore.results.FIXED; spelt here, the core may not be installed yet).
FIXED = "fixed"
#: What the proposal line says while the overlay is hidden.
PROPOSAL_HINT = ("Proposal (D) shows where the label and the model disagree on this structure (cases scored with the "
                 "probe: auv score --scorers all).")


class ReviewPanel:
    """Queue, moves, verdicts and fixes; ``node`` and ``cohort`` are set by the panel that owns it.

    ``fixChanged(fixing)`` is called when a fix starts or ends (the widget keeps :data:`FIX_SHORTCUTS` active
    and shows its status-bar button meanwhile); ``correctionsChanged()`` after a correction was saved.
    """

    def __init__(self, ui, logic, dialogs, fill_table: Callable) -> None:
        self.ui, self.logic, self.dialogs, self.fill_table = ui, logic, dialogs, fill_table
        self.node = None
        self.cohort = None
        self.queue = None
        self.shown = None  # the current structure as shown (logic.ShownStructure)
        self.fixing = False
        self.proposalWanted = False  # the reviewer asked to see the disagreement overlay (kept while moving on)
        self.fixChanged: Callable[[bool], None] | None = None
        self.correctionsChanged: Callable[[], None] | None = None

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
        self.cohort, self.queue, self.shown = cohort, None, None
        if self.proposalWanted:
            self.proposalWanted = False
            self.logic.hideProposal()
        self._setFixing(False)
        self._fillQueueTable()
        self._showProposalStatus()

    def onStartReview(self) -> None:
        if not self.settleUnsavedEdits("starting the review"):
            return
        self._setFixing(False)
        try:
            with self.dialogs.errors("Failed to build the review queue."):
                self.queue = self.logic.openReview(self.cohort, self.node.colorScore)
                self._fillQueueTable()
                self._showCurrentStructure()
        finally:  # the dialog raises again (slicer.util.tryWithErrorDisplay)
            self.updateButtons()

    def updateButtons(self) -> None:
        self.ui.startReviewButton.enabled = self.cohort is not None
        for button in QUEUE_BUTTONS:
            getattr(self.ui, button).enabled = self.queue is not None
        self.ui.saveCorrectionButton.enabled = self.cohort is not None
        self.ui.backToReviewButton.enabled = self.fixing
        self.ui.proposalButton.checked = self.proposalWanted

    def _fillQueueTable(self) -> None:
        content = None
        if self.queue is not None:  # without a queue the core is not needed (it may not be installed yet)
            from auvcore.review.queue_table import review_table_content

            content = review_table_content(self.queue)
        current = str(self.queue.position + 1) if self.queue is not None else None
        self.fill_table(self.ui.reviewQueueTableWidget, content, current)
        self.ui.reviewProgressLabel.text = content.summary if content else "No review started."

    def _showCurrentStructure(self) -> None:
        entry = self.queue.current if self.queue else None
        self.shown = None
        if entry is None:
            self.ui.reviewStructureLabel.text = "The queue is empty: the cohort has no scored structure."
            return
        self.shown = self.logic.showQueueEntry(self.cohort, entry, self.node.colormap, self.queue.score)
        self.node.inputVolume = self.shown.loaded.volume_node
        self.node.inputSegmentation = self.shown.loaded.segmentation_node
        verdict = self._describeCurrentStructure()
        self.ui.reviewNoteLineEdit.text = verdict.note if verdict else ""
        self._showCorrectionStatus()
        self._showProposal()

    def _showProposal(self) -> None:
        """While the reviewer wants it, the current structure's disagreement overlay (replacing the one before), or
        the reason there is none; the proposal line says which."""
        if not self.proposalWanted or self.shown is None:
            self._showProposalStatus()
            return
        from auvcore.errors import InputError

        entry = self.queue.current
        try:
            overlay = self.logic.showProposal(self.cohort, self.shown, entry.structure)
        except InputError as error:  # scored without the probe, or its label changed since: the line says so
            self._showProposalStatus(f"No proposal for {entry.case_id} / {entry.structure}: {error.problem}")
            return
        except Exception:
            self.proposalWanted = False  # not tried again on every move; the caller's dialog shows why
            self.updateButtons()
            raise
        self._showProposalStatus(f"{overlay.describe()}. Accept proposal saves the model's outline as the correction; "
                                 "Edit proposal opens it in the Segment Editor.")

    def caseLoadedFromTable(self) -> None:
        """A case was loaded from the cohort table: the proposal overlay left with the case before it (the logic
        hides it), so the button and the proposal line no longer say it is shown."""
        if self.proposalWanted:
            self.proposalWanted = False
            self.updateButtons()
        self._showProposalStatus()

    def _showProposalStatus(self, text: str = "") -> None:
        self.ui.proposalStatusLabel.text = text or (PROPOSAL_HINT if self.queue is not None else "")

    def _describeCurrentStructure(self):
        """The line about the current structure: its score, where the views are, its verdict (returned)."""
        entry = self.queue.current
        verdict = self.queue.verdict_of(entry)
        self.ui.reviewStructureLabel.text = (
            f"{self.queue.position + 1}. {entry.case_id} / {entry.structure}: {self.queue.score} {entry.value:.4g}, "
            f"z {entry.z:.2f}; views at its {self.shown.where}"
            + ("" if entry.judged else f". Its z is not comparable: {entry.why}")
            + (f". Verdict: {verdict.describe()}" if verdict else ""))
        return verdict

    def _showCorrectionStatus(self) -> None:
        """Which label the loaded case shows (its correction, or the source), or the fix under way."""
        entry = self.queue.current if self.queue else None
        edits = self.logic.loadedCaseEdits()
        if self.fixing and entry is not None:
            text = (f"Fixing {entry.case_id} / {entry.structure} in the Segment Editor: S saves the correction, "
                    "Ctrl+B or Back to review returns to the queue.")
        elif edits is not None:
            text = f"{edits.case_id}: {edits.choice.describe()}."
        else:
            text = "No cohort case loaded."
        self.ui.correctionStatusLabel.text = text

    def _setFixing(self, fixing: bool) -> None:
        changed = fixing != self.fixing
        self.fixing = fixing
        if changed and self.fixChanged is not None:
            self.fixChanged(fixing)
        self.updateButtons()
        self._showCorrectionStatus()

    def settleUnsavedEdits(self, action: str) -> bool:
        """Before ``action`` (moving on): ask what to do with the loaded case's unsaved edits (save / discard /
        cancel) and do it; False when the user cancels or the save failed."""
        try:
            edited = self.logic.hasUnsavedEdits()
        except Exception:  # noqa: BLE001 (it cannot be told, e.g. a segment that stands for no class: ask)
            edited = True
        if not edited:
            return True
        edits = self.logic.loadedCaseEdits()
        case = edits.case_id if edits is not None else "The loaded case"
        answer = self.dialogs.ask_save(f"{case}: the segmentation has edits that are not saved as a correction. "
                                       f"Save them before {action}?")
        if answer == "cancel":
            return False
        if answer == "save":
            return self._saveCorrection()
        self.logic.discardEdits()
        self._setFixing(False)
        return True

    def _moveTo(self, move: Callable) -> None:
        if self.queue is None:
            return
        if not self.settleUnsavedEdits("moving on"):
            self._fillQueueTable()  # the row a click selected goes back to the structure shown
            return
        self._setFixing(False)
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
        entry = self.queue.current if self.queue else None
        if entry is None:
            return
        before = self.queue.verdict_of(entry)
        if not self.settleUnsavedEdits("giving the verdict"):
            return
        now = self.queue.verdict_of(entry)
        if not (now is not None and now.verdict == FIXED and now != before):  # the edits saved just now fixed it
            with self.dialogs.errors("Failed to record the verdict."):
                self.queue.record(verdict, self.ui.reviewNoteLineEdit.text.strip())
                self.ui.reviewNoteLineEdit.text = ""
        self._moveTo(lambda: self.queue.next())  # reviewers go on to the next structure

    def onFixStructure(self) -> None:
        """Open the current structure in the Segment Editor, at its worst slice, and switch to that module."""
        if self.queue is None or self.queue.current is None:
            return
        from .segment_editor import SEGMENT_EDITOR_MODULE

        with self.dialogs.errors("Failed to open the structure in the Segment Editor."):
            self._showCurrentStructure()  # loads the case again if Close Scene removed it
            self.logic.editInSegmentEditor(self.shown)
            self._setFixing(True)  # before the switch: leaving this module keeps the fix's keys then
            self.logic.selectModule(SEGMENT_EDITOR_MODULE)

    def onSaveCorrection(self) -> None:
        """Save the loaded case's segmentation as its correction (``fixed`` for each structure it changes)."""
        if self.cohort is not None:
            self._saveCorrection()

    def _saveCorrection(self) -> bool:
        """Save the edits; whether they are saved (False when saving failed, which its dialog showed)."""
        try:
            with self.dialogs.errors("Failed to save the correction."):
                saved = self.logic.saveCorrection(self.cohort, self.ui.reviewNoteLineEdit.text.strip())
        except Exception:  # noqa: BLE001 (its dialog showed why; the edits stay in the scene)
            return False
        if saved is None:
            self.dialogs.info("Nothing to save: the segmentation is as it was loaded.")
            return True
        self._correctionSaved(saved)
        return True

    def _correctionSaved(self, saved) -> None:
        """A correction was saved (the edits, or an accepted proposal): say what it changed; the queue, its table and
        the cohort's correction column show it."""
        self.ui.reviewNoteLineEdit.text = ""
        changes = ", ".join(f"{c.structure} +{c.added}/-{c.removed} voxels"
                            + (f" (Dice {c.dice:.3f})" if c.dice is not None else "") for c in saved.changes)
        self.dialogs.info(f"Saved {saved.file}: {changes}; verdict fixed" + (", an accepted proposal." if saved.proposal
                                                                             else "."))
        if self.queue is not None:
            self.queue.reload()
            self._fillQueueTable()
            if self.shown is not None:
                self._describeCurrentStructure()
        self._showCorrectionStatus()
        if self.correctionsChanged is not None:
            self.correctionsChanged()

    def onBackToReview(self) -> None:
        """End the fix: this module again, the queue where it was, the views at the structure's worst slice."""
        if not self.fixing:
            return
        self._setFixing(False)
        self.logic.selectModule(MODULE_NAME)
        with self.dialogs.errors("Failed to show the structure."):
            self._showCurrentStructure()
            self._fillQueueTable()

    def onToggleProposal(self) -> None:
        """Show the current structure's disagreement overlay (and keep showing each one while moving on), or hide it."""
        if self.queue is None or self.queue.current is None:
            return
        self.proposalWanted = not self.proposalWanted
        self.ui.proposalButton.checked = self.proposalWanted
        if not self.proposalWanted:
            self.logic.hideProposal()
        with self.dialogs.errors("Failed to show the proposal."):
            self._showProposal()

    def onAcceptProposal(self) -> None:
        """Save the current structure's proposal as the case's correction (the verdict fixed, an accepted proposal)."""
        entry = self.queue.current if self.queue else None
        if entry is None or not self.settleUnsavedEdits("accepting the proposal"):
            return
        if not self.dialogs.confirm(self._acceptQuestion(entry)):
            return
        try:
            with self.dialogs.errors("Failed to accept the proposal."):
                saved = self.logic.acceptProposal(self.cohort, entry.case_id, entry.structure,
                                                  self.ui.reviewNoteLineEdit.text.strip())
        except Exception:  # noqa: BLE001 (its dialog showed why; nothing was written)
            return
        self.proposalWanted = False  # the overlay compares with the label as scored, no longer the one in use
        self._setFixing(False)
        self._correctionSaved(saved)
        with self.dialogs.errors("Failed to show the structure."):
            self._showCurrentStructure()  # the case again, with the accepted label
        self.updateButtons()

    def _acceptQuestion(self, entry) -> str:
        """Whether to accept: what is saved, and what the reviewer may not have seen (the overlay, a correction)."""
        question = (f"Save the model's outline of {entry.structure} as the correction of {entry.case_id} (the verdict "
                    "fixed, marked as an accepted proposal)?")
        if not self.logic.proposalShown(entry.case_id, entry.structure):
            question += (" It is not shown: Proposal (D) shows where it differs from the label. A proposal is a "
                         "starting point to check, not a fix to accept unseen.")
        edits = self.logic.loadedCaseEdits()
        if edits is not None and edits.case_id == entry.case_id and edits.choice.corrected:
            question += (f" {entry.case_id} has a saved correction ({edits.choice.correction.file}): a proposal is made "
                         f"on the label as it was scored, so the new correction is that label with {entry.structure} "
                         "replaced (the present one is kept beside it).")
        return question

    def onEditProposal(self) -> None:
        """Put the current structure's proposal into the case's segmentation and open the Fix step on it."""
        entry = self.queue.current if self.queue else None
        if entry is None or not self.settleUnsavedEdits("loading the proposal"):
            return
        with self.dialogs.errors("Failed to load the proposal into the segmentation."):
            self._showCurrentStructure()  # loads the case again if it left the scene
            change = self.logic.editProposal(self.cohort, self.shown, entry.structure)
        self.onFixStructure()
        against = (f"+{change.added}/-{change.removed} voxels against the label as scored" if change is not None
                   else "the same voxels as the label as scored")
        self._showProposalStatus(f"The proposal of {entry.structure} is in the segmentation ({against}): edit it in the "
                                 "Segment Editor; S saves it as the correction.")

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
