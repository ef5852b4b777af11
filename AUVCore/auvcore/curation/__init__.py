"""Cohort curation: quantile filtering, manual decisions, and the retained cohort's exports.

A results folder written by ``auv score`` gains three files here (SPEC §5):

* ``exclusions.json``: every exclusion/inclusion decision with case id, AUV,
  reason (``auv-quantile`` or ``manual``), time and tool version
  (:mod:`.exclusions`);
* ``retained_manifest.csv``: the retained cases (case_id, image, label, auv, S),
  a manifest ``auv score`` and the trainer read back (:mod:`.exports`);
* ``splits_final.json``: nnU-Net's 5-fold cross-validation split of the
  retained cases (:mod:`.exports`).

Which cases a keep fraction retains is :mod:`.quantile`. The file names are
:mod:`auvcore.results.layout`'s. Importing this package loads neither PyTorch
nor pandas.

Example:
    >>> import pandas as pd
    >>> results = pd.DataFrame({"case_id": ["a", "b", "c", "d"],
    ...                         "auv": [0.0, 0.2, 0.7, 1.0], "status": ["ok"] * 4})
    >>> quantile_threshold(results["auv"], keep=0.75)
    0.7
    >>> decisions = ExclusionList()
    >>> decisions.apply_quantile(results, keep=0.75)
    >>> decisions.include("d", note="checked by hand")
    >>> decisions.exclude("a", auv=0.0, note="wrong phase")
    >>> sorted(decisions.excluded()), retained_cases(results, decisions)
    (['a'], ['b', 'c', 'd'])
"""

from .exclusions import (
    FORMAT_MARKER,
    FORMAT_VERSION,
    MISSING_FILE,
    ConcurrentChangeError,
    Decision,
    ExclusionList,
    QuantileRule,
    file_digest,
    load_exclusions,
    save_exclusions,
    tool_version,
    updating_exclusions,
)
from .exports import NNUNET_FOLDS, NNUNET_SEED, crossval_splits, write_manifest, write_splits_final
from .quantile import DEFAULT_KEEP, quantile_threshold, retained_cases, scored_cases

__all__ = [
    "DEFAULT_KEEP",
    "FORMAT_MARKER",
    "FORMAT_VERSION",
    "MISSING_FILE",
    "NNUNET_FOLDS",
    "NNUNET_SEED",
    "ConcurrentChangeError",
    "Decision",
    "ExclusionList",
    "QuantileRule",
    "crossval_splits",
    "file_digest",
    "load_exclusions",
    "quantile_threshold",
    "retained_cases",
    "save_exclusions",
    "scored_cases",
    "tool_version",
    "updating_exclusions",
    "write_manifest",
    "write_splits_final",
]
