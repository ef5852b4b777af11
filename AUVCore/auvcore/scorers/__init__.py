"""Scorers beside the paper's measure, all from the same foundation-model pass.

``auv`` is the paper's measure (:mod:`auvcore.spectrum`). The others are
comparison baselines and label-aware scores (:mod:`.case_scores`,
:mod:`.cohort_scores`); ``auv audit`` measures which of them finds which
annotation or image error on a user's own cohort.

Example:
    >>> parse_scorers("agreement,auv")
    ('auv', 'agreement')
    >>> "prototype" in parse_scorers("all")
    True
"""

from __future__ import annotations

from .case_scores import CASE_SCORERS, CaseInputs, ScorerOutput, class_prototypes
from .cohort_scores import (
    AGGREGATES,
    COHORT_SCORERS,
    LABEL_CHECK_PARTS,
    Aggregate,
    ClassSetWarning,
    ScoreScale,
    label_check_scores,
    warn_if_class_sets_differ,
)

PAPER_SCORER = "auv"
LABEL_CHECK = "label_check"
#: Every scorer, in the order of the results table's columns.
SCORERS: tuple[str, ...] = (PAPER_SCORER, *CASE_SCORERS, *COHORT_SCORERS, LABEL_CHECK)
#: Scorers whose values need the whole cohort: they are not placed on a saved reference.
CROSS_CASE = frozenset({*COHORT_SCORERS, LABEL_CHECK})
#: Scorers that read the embeddings' inside-label prototypes.
NEEDS_PROTOTYPES = frozenset({*COHORT_SCORERS, LABEL_CHECK})


def parse_scorers(text: str) -> tuple[str, ...]:
    """``"auv,agreement"`` or ``"all"`` -> the scorer names in the registry's order (``auv`` first).

    ``label_check`` brings its parts along.
    """
    names = list(SCORERS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise ValueError(f"unknown scorer(s) {', '.join(unknown)}; choose from {', '.join(SCORERS)} or 'all'")
    wanted = {PAPER_SCORER, *names, *(LABEL_CHECK_PARTS if LABEL_CHECK in names else ())}
    return tuple(n for n in SCORERS if n in wanted)


__all__ = [
    "AGGREGATES",
    "Aggregate",
    "CASE_SCORERS",
    "COHORT_SCORERS",
    "CROSS_CASE",
    "LABEL_CHECK",
    "LABEL_CHECK_PARTS",
    "CaseInputs",
    "ClassSetWarning",
    "NEEDS_PROTOTYPES",
    "PAPER_SCORER",
    "SCORERS",
    "ScoreScale",
    "ScorerOutput",
    "class_prototypes",
    "label_check_scores",
    "parse_scorers",
    "warn_if_class_sets_differ",
]
