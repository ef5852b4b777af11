"""What each structure of a case is coloured by: its z within the structure across a reference cohort, or a fallback.

With a reference cohort the colour is the structure's robust z of the chosen
score (:mod:`AUVSlicerLib.structure_scores`) on a fixed scale from 0 (typical
for this structure, or better) to 3 (three robust deviations more suspect, or
more): bright means "unusual for this structure in this cohort", whatever the
case; a structure that fewer than 3 cases of its modality hold has no such z and
is grey. The rule is core's (:mod:`auvcore.results.colours`), which ``auv report``'s
thumbnails follow too. Without a reference cohort (or for a structure it holds too few times)
there is no z: the colours then spread over the case's own range of the raw
score, and the legend says so.

Example:
    >>> from AUVSlicerLib.case_result import case_result_from_dict
    >>> case = case_result_from_dict({"case_id": "c", "classes": [
    ...     {"id": 1, "name": "liver", "S": 0.05, "U": 0.95, "rows": 9},
    ...     {"id": 2, "name": "spleen", "S": 0.02, "U": 0.98, "rows": 9}]}, "c")
    >>> plan = colour_plan(case, "auv", reference=None)
    >>> plan.value_range, plan.relative
    ((0.95, 0.98), False)
    >>> "no reference cohort" in plan.title
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from auvcore.results.colours import Z_RANGE, clipped_z
from auvcore.scorers.registry import PAPER_SCORER

from .case_result import CaseResult
from .colormap import spread_range
from .structure_scores import MIN_REFERENCE_CASES, CohortScores, structure_value

@dataclass(frozen=True)
class ColourPlan:
    """Class name -> the value shown, the scale it is shown on, the legend title, and whether it is a z."""

    values: dict[str, float]
    value_range: tuple[float, float]
    title: str
    relative: bool


def _label(score: str) -> str:
    return "U = 1 - S" if score == PAPER_SCORER else score


def colour_plan(case: CaseResult, score: str = PAPER_SCORER, reference: CohortScores | None = None,
                color_range: str = "case") -> ColourPlan:
    """How to colour ``case`` by ``score``: z against ``reference`` where it has one, else the fallback.

    ``color_range`` matters for the fallback only: "case" spreads the colours over the case's
    values, "full" shows U over 0 to 1 (other scores have no fixed range and always spread).
    """
    raw = {c.name: structure_value(case, c.name, score) for c in case.classes}
    if reference is not None:
        # A structure with too few cases of its class and modality has a z against other modalities: grey, as none.
        entries = reference.scores_of(case, score)
        z = {entry.structure: entry.z if entry.judged else math.nan for entry in entries}
        if any(not math.isnan(v) for v in z.values()):
            shown = {name: clipped_z(v) for name, v in z.items()}
            title = (f"{_label(score)}: robust z within each structure, {len(reference.cases)} reference cases "
                     f"(0 typical, 3 = 3 or more; grey: fewer than {MIN_REFERENCE_CASES} cases of its modality hold it)")
            return ColourPlan(shown, Z_RANGE, title, relative=True)
        if any(not math.isnan(entry.z) for entry in entries):  # z against other modalities only: none is comparable
            title = (f"{_label(score)}: no structure of this case has {MIN_REFERENCE_CASES} cases of its class and modality "
                     f"among the {len(reference.cases)} reference cases, so none has a comparable z (all grey)")
            return ColourPlan(z, Z_RANGE, title, relative=True)
    fixed = color_range == "full" and score == PAPER_SCORER
    bounds = (0.0, 1.0) if score == PAPER_SCORER else (-math.inf, math.inf)
    value_range = (0.0, 1.0) if fixed else spread_range(list(raw.values()), bounds=bounds)
    where = "0 to 1" if fixed else "this case's range"
    title = f"{_label(score)}, {where}: no reference cohort, so not comparable across cases"
    return ColourPlan(raw, value_range, title, relative=False)
