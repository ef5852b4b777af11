"""What a user acts on in a results folder: each score's ranking of the cases, the review queue's order and
the filter's decisions. Two scorings of one cohort (another runtime, thread count or machine) promise these
identical (README, "Reproducibility"); the tests and ``Testing/benchmarks/reproducibility.py`` compare them.

Example:
    >>> decisions("results_a") == decisions("results_b")   # doctest: +SKIP
    True
"""

from __future__ import annotations

from pathlib import Path

from ..curation.quantile import quantile_threshold, scored_cases
from ..results import read_results
from .queue import ReviewQueue

#: The queues compared: by the paper's score and by the score to review by.
QUEUE_SCORES = ("auv", "label_check")
#: The fractions of cases kept by the filters compared (a third, two thirds, the default 95%).
KEEPS = (0.34, 0.67, 0.95)


def decisions(folder: str | Path) -> dict[str, list]:
    """Name -> the ordered cases (or structures) a user acts on; scores a folder lacks are left out."""
    table = read_results(Path(folder) / "results.csv")
    acted: dict[str, list] = {}
    for column in table.select_dtypes("number").columns:
        acted[f"cases by {column}"] = list(table.sort_values([column, "case_id"], kind="stable")["case_id"])
    for score in QUEUE_SCORES:
        if score in table.columns:
            acted[f"queue by {score}"] = [(e.case_id, e.structure) for e in ReviewQueue.of_folder(folder, score).entries]
    scored = scored_cases(table)
    for keep in KEEPS:
        acted[f"kept at {keep}"] = sorted(scored.loc[scored["auv"] <= quantile_threshold(scored["auv"], keep), "case_id"])
    return acted
