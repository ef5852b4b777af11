"""Each structure's score placed within its own structure across a cohort: a robust z that means "unusual here".

U = 1 - S of every class of a case tends to lie in 0.90-0.99, and the classes
differ from each other far more than one class differs between cases: a
liver is always "more certain" than a small vessel. So a structure is judged
against the same structure in the other cases of a reference cohort, with the
core's per-class scale (:meth:`auvcore.scales.ScoreScale.class_z`, the z that
``structures.csv`` holds, within each modality where enough of its cases hold
the class): ``(value - median) / (1.4826 MAD)`` of that class's values across
the cohort, higher meaning more unusual for every scorer (``auv`` is scaled as
-log S, so a less certain structure has a higher z; ``label_check`` is already
a sum of z). The review shows no z for a structure that fewer than
:data:`MIN_REFERENCE_CASES` cases hold, and a structure that fewer than that
many cases of its own modality hold is not judged against its own modality
(:class:`auvcore.scales.Lookalikes`): the queue puts it after the judged ones
and says why.

Example:
    >>> from auvcore.review.case_scores import case_result_from_dict
    >>> def case(case_id, u):
    ...     return case_result_from_dict({"case_id": case_id, "classes": [
    ...         {"id": 1, "name": "liver", "S": 1 - u, "rows": 9}]}, case_id)
    >>> cohort = CohortScores([case("a", 0.90), case("b", 0.91), case("c", 0.92), case("d", 0.99)])
    >>> [(s.case_id, round(s.value, 2), round(s.z, 1)) for s in cohort.queue("auv")][:2]
    [('d', 0.99, 12.9), ('c', 0.92, 0.4)]
    >>> cohort.queue("auv")[0].judged, cohort.queue("auv")[0].why
    (True, '')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..results import class_matrix
from ..results.structures import cohort_lookalikes
from ..scales import JUDGED, POOLED, ScoreScale, rank_value
from ..scorers.registry import PAPER_SCORER, scale_options
from .case_scores import CaseResult

#: Fewest cases of a structure in the reference cohort for a z (below it the colours fall back to the case's range).
MIN_REFERENCE_CASES = 3


def structure_value(case: CaseResult, structure: str, score: str) -> float:
    """The value of ``score`` shown for ``structure`` of ``case`` (``auv``: U = 1 - S); NaN where it has none."""
    if score == PAPER_SCORER:
        match = next((c for c in case.classes if c.name == structure), None)
        return match.uncertainty if match is not None else math.nan
    value = case.scores.get(score, {}).get(structure)
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class StructureScore:
    """One structure of one case: its value of a score and its robust z within the structure across the cohort.

    ``judged_against``: ``modality`` where enough cases of its class and modality hold it, else ``pooled`` or
    ``none`` (:class:`auvcore.scales.Lookalikes`); ``why`` says it in words ("" when judged).
    """

    case_id: str
    structure: str
    value: float
    z: float
    judged_against: str = JUDGED
    why: str = ""

    @property
    def judged(self) -> bool:
        return self.judged_against == JUDGED


class CohortScores:
    """The scored cases of a reference cohort and the per-structure scale of each score over them."""

    def __init__(self, cases: Sequence[CaseResult], source: str = "") -> None:
        self.cases = [case for case in cases if case.status == "ok"]
        self.source = source
        self._scales: dict[str, tuple[ScoreScale, dict[str, int]]] = {}
        self.lookalikes = cohort_lookalikes([case.record for case in self.cases])

    def case(self, case_id: str) -> CaseResult:
        """The cohort's scored case ``case_id``; KeyError naming the cases when it holds no such case."""
        match = next((case for case in self.cases if case.case_id == case_id), None)
        if match is None:
            raise KeyError(f"the cohort {self.source} has no scored case {case_id!r}; its cases are "
                           f"{', '.join(c.case_id for c in self.cases)}")
        return match

    def _scale(self, score: str) -> tuple[ScoreScale, dict[str, int]]:
        """The core's per-class scale of ``score`` over the cohort (``structures.csv``'s), and how many cases hold each class."""
        if score not in self._scales:
            records = [case.record for case in self.cases]
            matrix = class_matrix(records, score)
            counts = {str(column): int(matrix[column].notna().sum()) for column in matrix.columns}
            modalities = [record.modality for record in records]
            self._scales[score] = (ScoreScale.fit(matrix, "mean", **scale_options(score), modalities=modalities), counts)
        return self._scales[score]

    def scores_of(self, case: CaseResult, score: str) -> list[StructureScore]:
        """Every class of ``case`` with its value of ``score``, its z in this cohort (NaN: too few cases) and what it
        was judged against."""
        scale, counts = self._scale(score)
        modality = case.record.modality if case.record is not None else None
        z = scale.class_z(class_matrix([case.record], score), [modality])
        entries = []
        for item in case.classes:
            enough = counts.get(item.name, 0) >= MIN_REFERENCE_CASES and item.name in z.columns
            judged_against, _ = self.lookalikes.basis(modality, item.name)
            entries.append(StructureScore(case.case_id, item.name, structure_value(case, item.name, score),
                                          float(z.at[case.case_id, item.name]) if enough else math.nan,
                                          judged_against, self.lookalikes.why(modality, item.name)))
        return entries

    def z_of(self, case: CaseResult, score: str) -> dict[str, float]:
        """Class name -> its z of ``score`` in this cohort."""
        return {entry.structure: entry.z for entry in self.scores_of(case, score)}

    def queue(self, score: str) -> list[StructureScore]:
        """Every (case, structure) of the cohort, most suspect first: the structures judged against their own modality
        by z, then by value; then those judged against the cohort (``pooled``), then those against too few cases,
        each by z; undefined values last. Scores order as :func:`~auvcore.scales.rank_value` rounds them, and
        ties break by case and structure, so the order is the same on every machine."""
        entries = [entry for case in self.cases for entry in self.scores_of(case, score)]
        apart = {JUDGED: 0, POOLED: 1}

        def key(entry: StructureScore) -> tuple[int, int, float, float, str, str]:
            z = -math.inf if math.isnan(entry.z) else rank_value(entry.z)
            value = -math.inf if math.isnan(entry.value) else rank_value(entry.value)
            return (int(math.isnan(entry.value)), apart.get(entry.judged_against, 2), -z, -value, entry.case_id, entry.structure)

        return sorted(entries, key=key)
