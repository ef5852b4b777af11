"""The review queue: every (case, structure) of a cohort, most suspect first, and the verdicts given.

The queue is sorted by a chosen score's robust z within each structure
(:class:`~auvcore.review.structure_scores.CohortScores`); a reviewer walks it
with Next / Previous (or jumps to the next structure without a verdict) and
gives each structure a verdict, which :mod:`auvcore.results.review` writes to
``review.json`` at once. The Slicer module's review panel and ``auv review``
walk this same queue.

Example:
    >>> queue = ReviewQueue.of_folder("/data/out", score="auv")  # doctest: +SKIP
    >>> queue.current.case_id, queue.current.structure           # doctest: +SKIP
    ('ct_7', 'liver')
    >>> queue.record("needs_fix", note="misses the lobe tip")   # doctest: +SKIP
    >>> queue.progress()                                         # doctest: +SKIP
    'reviewed 1 of 48'
"""

from __future__ import annotations

from pathlib import Path

from ..results import REVIEW_JSON, Review, ResultsFolder, Verdict, load_review, read_results, record_verdict
from .case_scores import CaseResult, case_result_path, load_case_result
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

    @classmethod
    def of_folder(cls, folder: str | Path, score: str) -> ReviewQueue:
        """The queue of a results folder's cases (those of its ``results.csv``), placed in the folder itself."""
        return cls.open(folder, folder_cases(folder), score)

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

    def reload(self) -> Review:
        """Read ``review.json`` again (another reviewer, or a saved correction, may have changed it)."""
        self.review = load_review(self.review_path)
        return self.review

    def reviewed(self) -> int:
        return self.review.reviewed((e.case_id, e.structure) for e in self.entries)

    def progress(self) -> str:
        return f"reviewed {self.reviewed()} of {len(self.entries)}"


def folder_cases(folder: str | Path) -> list[CaseResult]:
    """Every case of a results folder's ``results.csv``, read from its case record, in the table's order."""
    case_ids = read_results(ResultsFolder(Path(folder)).root)["case_id"].astype(str).tolist()
    return [load_case_result(case_result_path(folder, case_id)) for case_id in case_ids]
