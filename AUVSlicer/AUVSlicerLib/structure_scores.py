"""Each structure's score placed within its own structure across a cohort: a robust z that means "unusual here".

U = 1 - S of every class of a case tends to lie in 0.90-0.99, and the classes
differ from each other far more than one class differs between cases: a
liver is always "more certain" than a small vessel. So a structure is judged
against the same structure in the other cases of a reference cohort: its robust
z is ``(value - median) / (1.4826 * MAD)`` of that structure's values of that
score across the cohort, positive where the value is more suspect than usual.
Every score is oriented so that higher is more suspect (``auv``'s per-class
value is U = 1 - S), as ``auv audit`` ranks them.

Example:
    >>> from AUVSlicerLib.case_result import case_result_from_dict
    >>> def case(case_id, u):
    ...     return case_result_from_dict({"case_id": case_id, "classes": [
    ...         {"id": 1, "name": "liver", "S": 1 - u, "U": u, "rows": 9}]}, case_id)
    >>> cohort = CohortScores([case("a", 0.90), case("b", 0.91), case("c", 0.92), case("d", 0.99)])
    >>> round(cohort.z("liver", "auv", 0.99), 1)
    5.1
    >>> [(s.case_id, s.structure) for s in cohort.queue("auv")][:2]
    [('d', 'liver'), ('c', 'liver')]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .case_result import CaseResult

#: The paper's score; per structure it is the class's U = 1 - S.
PAPER_SCORE = "auv"
#: Fewest cases of a structure in the reference cohort for a z (below it the colours fall back to the case's range).
MIN_REFERENCE_CASES = 3
#: Scale between the MAD and a normal distribution's standard deviation.
MAD_TO_SD = 1.4826


def structure_value(case: CaseResult, structure: str, score: str) -> float:
    """The value of ``score`` for ``structure`` of ``case``; NaN where it has none."""
    if score == PAPER_SCORE:
        match = next((c for c in case.classes if c.name == structure), None)
        return match.uncertainty if match is not None else math.nan
    value = case.scores.get(score, {}).get(structure)
    return math.nan if value is None else float(value)


def available_scores(cases: Sequence[CaseResult]) -> list[str]:
    """``auv`` and every scorer with per-class values in any of ``cases``, in the order first seen."""
    names = [PAPER_SCORE]
    for case in cases:
        names += [name for name, values in case.scores.items() if values and name not in names]
    return names


def robust_z(value: float, reference: Sequence[float]) -> float:
    """``(value - median) / (1.4826 MAD)`` of the finite ``reference`` values; NaN with too few of them.

    Where half the values are equal (MAD 0) the mean absolute deviation stands in;
    where all are equal, any other value is infinitely unusual.
    """
    values = np.asarray([v for v in reference if math.isfinite(v)], dtype=float)
    if math.isnan(value) or len(values) < MIN_REFERENCE_CASES:
        return math.nan
    median = float(np.median(values))
    spread = MAD_TO_SD * float(np.median(np.abs(values - median))) or 1.2533 * float(np.mean(np.abs(values - median)))
    if spread == 0.0:
        return 0.0 if value == median else math.copysign(math.inf, value - median)
    return (value - median) / spread


@dataclass(frozen=True)
class StructureScore:
    """One structure of one case: its value of a score and its robust z within the structure across the cohort."""

    case_id: str
    structure: str
    value: float
    z: float


class CohortScores:
    """The scored cases of a reference cohort, for the robust z of any structure's score."""

    def __init__(self, cases: Sequence[CaseResult], source: str = "") -> None:
        self.cases = [case for case in cases if case.status == "ok"]
        self.source = source

    def values(self, structure: str, score: str) -> list[float]:
        return [structure_value(case, structure, score) for case in self.cases]

    def z(self, structure: str, score: str, value: float) -> float:
        return robust_z(value, self.values(structure, score))

    def scores_of(self, case: CaseResult, score: str) -> list[StructureScore]:
        """Every class of ``case`` with its value of ``score`` and its z in this cohort."""
        return [StructureScore(case.case_id, c.name, value, self.z(c.name, score, value))
                for c in case.classes for value in [structure_value(case, c.name, score)]]

    def queue(self, score: str) -> list[StructureScore]:
        """Every (case, structure) of the cohort, most suspect first: by z, then by value; undefined ones last."""
        entries = [entry for case in self.cases for entry in self.scores_of(case, score)]

        def key(entry: StructureScore) -> tuple[int, float, float]:
            z = -math.inf if math.isnan(entry.z) else entry.z
            value = -math.inf if math.isnan(entry.value) else entry.value
            return (int(math.isnan(entry.value)), -z, -value)

        return sorted(entries, key=key)
