"""Scorers beside the paper's measure, from the same foundation-model pass, and the peer method ``cleanlab``.

``auv`` is the paper's measure (:mod:`auvcore.spectrum`). The others are
comparison baselines and label-aware scores (:mod:`.case_scores`,
:mod:`.cohort_scores`); ``auv audit`` measures which of them finds which
annotation or image error on a user's own cohort. ``cleanlab``
(:mod:`.cleanlab_scores`) is confident learning on a trained segmenter's
out-of-fold probabilities (``auv oof``), read at the cohort stage.

The registry (:mod:`.registry`) and the cohort scales load without torch;
the scorers' code (torch, SciPy, scikit-learn) loads on first use.

Example:
    >>> parse_scorers("agreement,auv")
    ('auv', 'agreement')
"""

from __future__ import annotations

from ..lazy import lazy_exports
from ..scales import AGGREGATES, Aggregate, ClassSetWarning, ScoreScale, warn_if_class_sets_differ
from .registry import (
    CLEANLAB,
    CROSS_CASE,
    EXTERNAL,
    LABEL_CHECK,
    LABEL_CHECK_PARTS,
    NEEDS_PROTOTYPES,
    PAPER_SCORER,
    PROBE_SCORERS,
    SCORER_INFO,
    SCORERS,
    ScorerInfo,
    parse_scorers,
)

#: The scorers' code (torch, SciPy, scikit-learn), loaded on first use.
__getattr__ = lazy_exports(__name__, {
    "CASE_SCORERS": "case_scores",
    "CaseInputs": "case_scores",
    "ScorerOutput": "case_scores",
    "class_prototypes": "case_scores",
    "COHORT_SCORERS": "cohort_scores",
    "label_check_scores": "cohort_scores",
    "cleanlab_scores": "cleanlab_scores",
})


__all__ = [
    "AGGREGATES",
    "Aggregate",
    "CASE_SCORERS",
    "CLEANLAB",
    "COHORT_SCORERS",
    "CROSS_CASE",
    "EXTERNAL",
    "LABEL_CHECK",
    "LABEL_CHECK_PARTS",
    "CaseInputs",
    "ClassSetWarning",
    "NEEDS_PROTOTYPES",
    "PAPER_SCORER",
    "PROBE_SCORERS",
    "SCORERS",
    "SCORER_INFO",
    "ScoreScale",
    "ScorerInfo",
    "ScorerOutput",
    "class_prototypes",
    "cleanlab_scores",
    "label_check_scores",
    "parse_scorers",
    "warn_if_class_sets_differ",
]
