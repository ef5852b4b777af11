"""The review workstation's queue: every (case, structure) of a cohort, most suspect first, and the verdicts given.

The queue is sorted by a chosen score's robust z within each structure
(:class:`~AUVSlicerLib.structure_scores.CohortScores`); a reviewer walks it
with Next / Previous (or jumps to the next structure without a verdict) and
gives each structure a verdict, which :mod:`auvcore.results.review` writes to
``review.json`` at once.

Example:
    >>> queue = ReviewQueue.open("/data/out", score="auv")     # doctest: +SKIP
    >>> queue.current.case_id, queue.current.structure          # doctest: +SKIP
    ('ct_7', 'liver')
    >>> queue.record("needs_fix", note="misses the lobe tip")  # doctest: +SKIP
    >>> queue.progress()                                        # doctest: +SKIP
    'reviewed 1 of 48'
"""

from __future__ import annotations

from pathlib import Path

from auvcore.results import REVIEW_JSON, Review, Verdict, load_review, record_verdict

from .case_result import CaseResult
from .structure_scores import CohortScores, StructureScore


class ReviewQueue:
    """A cohort's structures in review order, a position in it, and the verdicts of ``folder/review.json``."""

    def __init__(self, folder: str | Path, cohort: CohortScores, score: str) -> None:
        self.folder = Path(folder)
        self.cohort = cohort
        self.score = score
        self.entries: list[StructureScore] = cohort.queue(score)
        self.review: Review = load_review(self.review_path)
        self.position = 0

    @classmethod
    def open(cls, folder: str | Path, cases: list[CaseResult], score: str) -> ReviewQueue:
        return cls(folder, CohortScores(cases, str(folder)), score)

    @property
    def review_path(self) -> Path:
        return self.folder / REVIEW_JSON

    @property
    def current(self) -> StructureScore | None:
        return self.entries[self.position] if self.entries else None

    def go_to(self, position: int) -> StructureScore | None:
        """Move to ``position`` (clamped to the queue)."""
        if self.entries:
            self.position = min(max(position, 0), len(self.entries) - 1)
        return self.current

    def next(self) -> StructureScore | None:
        return self.go_to(self.position + 1)

    def previous(self) -> StructureScore | None:
        return self.go_to(self.position - 1)

    def next_unreviewed(self) -> StructureScore | None:
        """The next structure after the current one without a verdict (wrapping round); stays when all have one."""
        count = len(self.entries)
        for step in range(1, count + 1):
            entry = self.entries[(self.position + step) % count]
            if self.verdict_of(entry) is None:
                return self.go_to((self.position + step) % count)
        return self.current

    def verdict_of(self, entry: StructureScore) -> Verdict | None:
        return self.review.get(entry.case_id, entry.structure)

    def record(self, verdict: str, note: str = "") -> Verdict:
        """Write the verdict on the current structure to ``review.json`` now; returns it."""
        entry = self.current
        if entry is None:
            raise ValueError("the review queue is empty")
        self.review = record_verdict(self.review_path, entry.case_id, entry.structure, verdict, note)
        return self.review.get(entry.case_id, entry.structure)

    def reviewed(self) -> int:
        return self.review.reviewed((e.case_id, e.structure) for e in self.entries)

    def progress(self) -> str:
        return f"reviewed {self.reviewed()} of {len(self.entries)}"
