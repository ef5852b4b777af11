"""One reviewer's walk through a results folder's queue: which structure is shown, verdicts, and saving a fix.

The session holds no user interface: :mod:`.app` shows it in a browser. The
queue, the colours and where to look are the core's (:mod:`auvcore.review`, as in
the Slicer module); the case's nodes are :class:`~.scene.CaseScene`'s; the views
are whatever implements :class:`CaseViews` (trame-slicer's in the app). Verdicts
go to ``review.json`` at once (:func:`auvcore.results.record_verdict`), a fix
through :func:`auvcore.results.save_correction`; both hold the review's lock, so
two reviewers of one folder (two ``auv review`` servers) never lose each other's
work. A read-only session (teaching) refuses both and writes nothing.

Example (with the slicer-core wheel):
    >>> session = ReviewSession(ResultsFolder("results"), CaseScene(scene), views, score="agreement")   # doctest: +SKIP
    >>> shown = session.show()                                                                          # doctest: +SKIP
    >>> shown.entry.case_id, shown.entry.structure, shown.where                                          # doctest: +SKIP
    ('ct_fast', 'kidney_right', 'worst agreement slice (slice 3, value 0.41)')
    >>> session.record("needs_fix", "misses the upper pole").position                                   # doctest: +SKIP
    2
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import InputError
from ..results import CaseRecord, Correction, LabelChoice, ResultsFolder, Verdict, label_for, save_correction
from ..review.colour_plan import ColourPlan, colour_plan
from ..review.queue import ReviewQueue
from ..review.structure_scores import StructureScore
from ..review.worst_slices import where_to_look
from .volumes import VolumeCache

if TYPE_CHECKING:
    from .scene import CaseScene

log = logging.getLogger(__name__)


class CaseViews(Protocol):
    """The views a session shows a case in."""

    def show_case(self, volume_node, segmentation_node) -> None:
        """A new case was loaded: show its volume and segmentation, fitted to the views."""

    def look_at(self, ras: tuple[float, float, float]) -> None:
        """Centre every view on ``ras`` (mm)."""


class ReadOnlyError(InputError):
    """A read-only session was asked to write."""


class UnsavedEdits(RuntimeError):
    """Moving to another case would drop the loaded case's unsaved edits: save or discard them first."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"{case_id} has edits that are not saved as a correction")
        self.case_id = case_id


class CorrectionChanged(InputError):
    """Another reviewer saved a correction of the case since this session loaded it."""


@dataclass(frozen=True)
class Shown:
    """The structure a session shows: its place in the queue, its score, where the views are, its verdict."""

    position: int
    total: int
    entry: StructureScore
    where: str
    ras: tuple[float, float, float]
    verdict: Verdict | None
    plan: ColourPlan
    label: str

    def describe(self, score: str) -> str:
        """E.g. ``3 of 11. ct_fast / spleen: agreement 0.41, z 2.10; views at its worst agreement slice (...)``."""
        entry = self.entry
        z = "no z" if math.isnan(entry.z) else f"z {entry.z:.2f}"
        text = f"{self.position} of {self.total}. {entry.case_id} / {entry.structure}: {score} {entry.value:.4g}, {z}; views at its {self.where}"
        if not entry.judged:
            text += f". Its z is not comparable: {entry.why}"
        return text


class ReviewSession:
    """A results folder's review queue shown one structure at a time in a :class:`~.scene.CaseScene`."""

    def __init__(self, folder: ResultsFolder, scene: CaseScene, views: CaseViews, score: str = "auv",
                 read_only: bool = False, colormap: str = "viridis") -> None:
        self.folder, self.scene, self.views = folder, scene, views
        self.read_only, self.colormap = read_only, colormap
        self.queue = ReviewQueue.of_folder(folder.root, score)
        self._plans: dict[str, ColourPlan] = {}  # case id -> its colour plan (the cohort does not change)
        self.volumes = VolumeCache()
        if not self.queue.entries:
            raise InputError(folder.root, "holds no scored structure to review (score a cohort with labels first)")

    @property
    def score(self) -> str:
        return self.queue.score

    @property
    def current(self) -> StructureScore:
        assert self.queue.current is not None  # the queue is not empty
        return self.queue.current

    def _case_files(self, case_id: str) -> tuple[CaseRecord, Path, LabelChoice]:
        """A case's record, image and the label the folder uses for it (its correction, else its source)."""
        record = self.queue.cohort.case(case_id).record
        if record is None or record.label is None:
            raise InputError(self.folder.case_json(case_id), "names no label: a case scored without labels has nothing to review")
        image = self.folder.recorded_path(record.image)
        return record, image, label_for(self.folder, case_id, self.folder.recorded_path(record.label))

    def _load(self, case_id: str) -> None:
        record, image, choice = self._case_files(case_id)
        window = tuple(record.settings.get("ct_window", ())) if (record.modality or "").lower() == "ct" else ()
        names = {c.id: c.name for c in record.classes}
        loaded = self.scene.load(case_id, self.volumes.read(image), self.volumes.read(choice.path), choice, names,
                                 window if len(window) == 2 else None)  # type: ignore[arg-type]
        self.views.show_case(loaded.volume, loaded.segmentation)

    def _read_ahead(self) -> None:
        """Start reading the cases of the structures next to the current one in the queue."""
        entries, position = self.queue.entries, self.queue.position
        nearby = [entries[i].case_id for i in (position + 1, position - 1, position + 2) if 0 <= i < len(entries)]
        for case_id in dict.fromkeys(c for c in nearby if self.scene.loaded is None or c != self.scene.loaded.case_id):
            try:
                _, image, choice = self._case_files(case_id)
            except InputError:
                continue  # showing it will say why
            self.volumes.prefetch([image, choice.path])

    def show(self) -> Shown:
        """Show the current structure: load its case unless it is loaded, colour it, jump to its worst slice."""
        entry = self.current
        if self.scene.loaded is None or self.scene.loaded.case_id != entry.case_id:
            self._load(entry.case_id)
        case = self.queue.cohort.case(entry.case_id)
        if entry.case_id not in self._plans:
            self._plans[entry.case_id] = colour_plan(case, self.score, self.queue.cohort)
        plan = self._plans[entry.case_id]
        self.scene.colour(plan, self.colormap)
        self.scene.highlight(entry.structure)
        flag = where_to_look(case.record, entry.structure, self.score)
        if flag is not None:
            ras, where = flag.ras, flag.describe()
        else:
            ras, where = self.scene.centre_of(entry.structure), "centre of the structure (the case has no per-slice values)"
        self.views.look_at(ras)
        self._read_ahead()
        assert self.scene.loaded is not None
        return Shown(self.queue.position + 1, len(self.queue.entries), entry, where, ras, self.queue.verdict_of(entry),
                     plan, self.scene.loaded.choice.describe())

    def go_to(self, position: int, discard: bool = False) -> Shown:
        """Show the queue's ``position`` (0-based, clamped).

        Raises:
            UnsavedEdits: when that is another case and the loaded one has unsaved edits (unless ``discard``).
        """
        count = len(self.queue.entries)
        target = self.queue.entries[min(max(position, 0), count - 1)]
        loaded = self.scene.loaded
        if loaded is not None and loaded.case_id != target.case_id and not discard and self.scene.has_edits():
            raise UnsavedEdits(loaded.case_id)
        if discard and loaded is not None and loaded.case_id != target.case_id:
            self.scene.unload()
        self.queue.reload()  # another reviewer's verdicts count too
        self.queue.go_to(position)
        return self.show()

    def next(self, discard: bool = False) -> Shown:
        return self.go_to(self.queue.position + 1, discard)

    def previous(self, discard: bool = False) -> Shown:
        return self.go_to(self.queue.position - 1, discard)

    def next_unreviewed(self, discard: bool = False) -> Shown:
        """The next structure without a verdict (wrapping round); stays when every one has one."""
        self.queue.reload()
        count = len(self.queue.entries)
        for step in range(1, count + 1):
            position = (self.queue.position + step) % count
            if self.queue.verdict_of(self.queue.entries[position]) is None:
                return self.go_to(position, discard)
        return self.show()

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(self.folder.root, f"is open read-only (auv review --read-only): {what} is not written")

    def record(self, verdict: str, note: str = "") -> Verdict:
        """Write ``verdict`` on the current structure to ``review.json`` now; returns it (the caller moves on)."""
        self._writable("a verdict")
        return self.queue.record(verdict, note)

    def save_correction(self, note: str = "", force: bool = False) -> Correction | None:
        """Save the loaded case's segments as its correction (verdict ``fixed`` for each structure it changes).

        Returns None when nothing was edited.

        Raises:
            CorrectionChanged: another reviewer saved a correction of the case since it was loaded (``force``
                saves anyway; theirs is kept under its numbered name, :mod:`auvcore.results.corrections`).
            ReadOnlyError: in a read-only session.
            ValueError: naming a segment that stands for no class of the case.
        """
        self._writable("a correction")
        loaded, image = self.scene.loaded, self.scene.edits()
        if loaded is None or image is None:
            return None
        now = label_for(self.folder, loaded.case_id, loaded.choice.source or loaded.choice.path)
        before = loaded.choice.correction
        if not force and (now.correction is not None) and (before is None or now.correction.sha256 != before.sha256):
            raise CorrectionChanged(now.path, f"was saved as the correction of {loaded.case_id} by "
                                    f"{now.correction.reviewer or 'another reviewer'} at {now.correction.time}, after "
                                    "you opened the case: save anyway to keep both (theirs under a numbered name), "
                                    "or discard your edits to see theirs")
        log.info("writing the correction of %s", loaded.case_id)
        saved = save_correction(self.folder, loaded.case_id, image, source=loaded.choice.source, note=note)
        self.scene.saved(image, label_for(self.folder, loaded.case_id, loaded.choice.source or loaded.choice.path))
        self.queue.reload()
        return saved

    def close(self) -> None:
        """Stop reading ahead."""
        self.volumes.close()

    def discard_edits(self) -> Shown:
        """Forget the loaded case's edits: it is read again from its file."""
        self.scene.unload()
        return self.show()

    def progress(self) -> str:
        return self.queue.progress()
