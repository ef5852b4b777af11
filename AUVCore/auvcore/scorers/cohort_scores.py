"""The cohort scorers, and ``label_check`` that combines scorers aimed at different label errors.

How class values become case scores over a cohort is :mod:`auvcore.scales`.

Cohort scorers, from the per-class inside-label prototypes of every case:

* ``prototype``: 1 - cosine similarity of a case's class prototype to the
  element-wise median of that class's prototypes over the cohort; catches a
  label on the wrong structure (a swap, a blob elsewhere).
* ``mahalanobis``: the Mahalanobis distance of the (unit) prototype to the
  cohort's distribution of that class's prototypes, with a Ledoit-Wolf
  shrunk covariance (few cases, many channels).

Both need at least :data:`MIN_CASES_PER_CLASS` cases holding the class.

``label_check`` combines the scorers aimed at different label errors: for
each class, the sum of the positive robust z-scores (over the cohort's cases
holding the class) of ``agreement`` (extent: shift, blob), ``boundary_gradient``
(a boundary off the image edge: dilation, erosion), ``consistency`` (slice
gaps: dropout), ``mahalanobis`` (the wrong structure: swap) and
``boundary_distance`` (a boundary away from the model's: dilation, erosion,
shift). A sum, not the largest: an error that moves two parts a little ranks
above a clean structure where one part drifts by chance.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..scales import ScoreScale

MIN_CASES_PER_CLASS = 3


def prototype_scores(prototypes: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, float]]:
    """``prototype`` per case and class: 1 - cos to the class's element-wise median prototype.

    Example:
        >>> cases = [{"liver": np.array([1.0, 0.0])}] * 3 + [{"liver": np.array([0.0, 1.0])}]
        >>> [round(s["liver"], 3) for s in prototype_scores(cases)]
        [0.0, 0.0, 0.0, 1.0]
    """
    return _per_class(prototypes, _cosine_to_median)


def mahalanobis_scores(prototypes: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, float]]:
    """``mahalanobis`` per case and class, with a Ledoit-Wolf covariance of the class's unit prototypes."""
    return _per_class(prototypes, _mahalanobis)


def _per_class(prototypes: Sequence[Mapping[str, np.ndarray]], measure) -> list[dict[str, float]]:
    scores: list[dict[str, float]] = [{} for _ in prototypes]
    classes = sorted({name for case in prototypes for name in case})
    for name in classes:
        holders = [i for i, case in enumerate(prototypes) if name in case and np.all(np.isfinite(case[name]))]
        if len(holders) < MIN_CASES_PER_CLASS:
            continue
        vectors = np.stack([np.asarray(prototypes[i][name], dtype=np.float64) for i in holders])
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        for i, value in zip(holders, measure(unit)):
            scores[i][name] = float(value)
    return scores


def _cosine_to_median(unit: np.ndarray) -> np.ndarray:
    centre = np.median(unit, axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    return 1.0 - unit @ centre


def _mahalanobis(unit: np.ndarray) -> np.ndarray:
    from sklearn.covariance import LedoitWolf  # scikit-learn is loaded when a cohort is scored, not on import

    model = LedoitWolf().fit(unit)
    return np.sqrt(np.maximum(model.mahalanobis(unit), 0.0))


#: Scorers computed over the cohort from the per-class prototypes.
COHORT_SCORERS = {"prototype": prototype_scores, "mahalanobis": mahalanobis_scores}


def label_check_scores(parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per case and class, the sum of the parts' positive robust z-scores (NaN where no part has a value).

    Example:
        >>> a = pd.DataFrame({"liver": [0.1, 0.1, 0.2, 0.9]})
        >>> b = pd.DataFrame({"liver": [5.0, 1.0, 1.0, 1.0]})
        >>> label_check_scores({"a": a, "b": b})["liver"].round(1).tolist()
        [2.3, 0.0, 0.7, 10.1]
        >>> label_check_scores({"a": a, "b": a})["liver"].round(1).tolist()  # both parts see the last case
        [0.0, 0.0, 1.3, 20.2]
    """
    z = [ScoreScale.fit(matrix, "mean").class_z(matrix) for matrix in parts.values()]
    combined = pd.concat(z, axis=0, keys=range(len(z))).clip(lower=0.0)
    return combined.groupby(level=1, sort=False).sum(min_count=1)
