"""Scoring cases and cohorts, by stage.

* :mod:`.settings`: what defines a case's scores (settings, weights, versions);
* :mod:`.pipeline`: one case from files to its record (:class:`CaseScorer`);
* :mod:`.cache`: a case's JSON as its cache entry, and its prototypes;
* :mod:`.loop`: the loop over a cohort or a shard of it (:func:`score_cases`);
* :mod:`.stage`: the cohort stage (:func:`normalise_cohort`, :func:`place_on_reference`).

``OUT/cases/<case_id>.json`` is written atomically for every case; its
``cache_key`` hashes the image and label contents, the backbone's weights and
the settings, so an interrupted run resumes where it stopped and a changed
file is rescored.

Example:
    >>> from auvcore.cohort import ScoreSettings, score_cohort
    >>> from auvcore.datasets import discover_cases
    >>> table = score_cohort(discover_cases("manifest.csv"), "out", ScoreSettings())  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..datasets import CaseSpec
from ..results.layout import ResultsFolder
from ..results.reference import SavedReference
from .cache import CacheLookup, load_prototypes, look_up, save_case
from .loop import load_records, score_cases
from .pipeline import CaseIdentity, CaseScorer, PreparedCase, Prototypes, error_record
from .settings import Mode, ScoreSettings, checkpoint_identity, package_versions, runtime_identity, scoring_identity
from .stage import add_cohort_scorers, class_matrix, cohort_scores, normalise_cohort, place_on_reference

if TYPE_CHECKING:
    import pandas as pd


def score_cohort(
    specs: Sequence[CaseSpec],
    out: str | Path,
    settings: ScoreSettings,
    reference: SavedReference | None = None,
    scorer: CaseScorer | None = None,
    progress: bool = True,
    emit: Callable[[str], None] | None = None,
    read_ahead: bool = True,
) -> "pd.DataFrame":
    """Score every case (resuming from the cache), then the cohort stage; returns the results table.

    Args:
        specs: the cases (:func:`auvcore.datasets.discover_cases`).
        out: the results folder.
        settings: scoring settings.
        reference: place the cases on this saved cohort's scales instead of
            normalising over ``specs``.
        scorer: reuse a scorer (and its loaded model) across calls.
        progress: show a progress bar on stderr.
        emit: receives the ``PROGRESS`` lines (default: stdout).
        read_ahead: read the next case and write the last one while the model runs (:func:`score_cases`).
    """
    with ResultsFolder(Path(out)).writer_lock():  # one writer at a time: a second run waits, then finds the cache
        records = score_cases(specs, out, settings, scorer, progress, emit, read_ahead=read_ahead)
        if reference is None:
            return normalise_cohort(records, out, settings)
        return place_on_reference(records, out, settings, reference)


__all__ = [
    "CacheLookup",
    "CaseIdentity",
    "CaseScorer",
    "Mode",
    "PreparedCase",
    "Prototypes",
    "ScoreSettings",
    "add_cohort_scorers",
    "checkpoint_identity",
    "class_matrix",
    "cohort_scores",
    "error_record",
    "look_up",
    "load_prototypes",
    "load_records",
    "normalise_cohort",
    "package_versions",
    "place_on_reference",
    "runtime_identity",
    "save_case",
    "score_cases",
    "score_cohort",
    "scoring_identity",
]
