"""From per-class values to one score per case over a cohort, and the cohort scorers.

Aggregation (``--aggregate``):

* ``paper``: the paper's rule. For ``auv``: a_i = -log(sum_c S_ic); for any
  other scorer, the sum of its class values. Then min-max over the cohort.
  When cases hold different class sets the sum follows the class count, so a
  :class:`ClassSetWarning` is raised.
* ``mean`` / ``max``: each class is normalised over the cases that hold it,
  as a robust z-score (value - median) / (1.4826 MAD), then a case takes the
  mean or the max over its classes; then min-max over the cohort. For
  ``auv`` the class value is -log S_ic.

In every case the result is in [0, 1], higher = more suspect, and a saved
:class:`ScoreScale` places new cases on the same scale (clipped to [0, 1]).

Cohort scorers, from the per-class inside-label prototypes of every case:

* ``prototype``: 1 - cosine similarity of a case's class prototype to the
  element-wise median of that class's prototypes over the cohort; catches a
  label on the wrong structure (a swap, a blob elsewhere).
* ``mahalanobis``: the Mahalanobis distance of the (unit) prototype to the
  cohort's distribution of that class's prototypes, with a Ledoit-Wolf
  shrunk covariance (few cases, many channels).

Both need at least :data:`MIN_CASES_PER_CLASS` cases holding the class.

``label_check`` combines the scorers aimed at different label errors: for
each class, the largest of the robust z-scores (over the cohort's cases
holding the class) of ``agreement`` (extent: shift, blob), ``boundary_gradient``
(a boundary off the image edge: dilation, erosion), ``consistency`` (slice
gaps: dropout) and ``mahalanobis`` (the wrong structure: swap).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf

Aggregate = Literal["paper", "mean", "max"]
AGGREGATES: tuple[str, ...] = ("paper", "mean", "max")
MIN_CASES_PER_CLASS = 3
MAD_TO_SIGMA = 1.4826


class ClassSetWarning(UserWarning):
    """The cases hold different class sets, so the paper's class sum follows the class count."""


def robust_scale(values: np.ndarray) -> tuple[float, float]:
    """(median, spread) of the finite values: 1.4826 MAD, or the standard deviation when the MAD is (about) 0.

    Example:
        >>> robust_scale(np.array([1.0, 2.0, 3.0, 100.0]))
        (2.5, 1.4826)
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    median = float(np.median(finite))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(finite - median)))
    if spread <= np.finfo(np.float64).eps * max(1.0, float(np.abs(finite).max())):  # most values tied
        spread = float(finite.std())
    return median, spread


@dataclass
class ScoreScale:
    """How a scorer's per-class values become case scores in [0, 1] for one cohort.

    Attributes:
        aggregate: ``paper``, ``mean`` or ``max``.
        negative_log: the class values are S (``auv``): use -log S.
        class_stats: class -> (median, spread) of its values (``mean``/``max``).
        low, high: the cohort's min and max of the aggregated value.
    """

    aggregate: Aggregate
    negative_log: bool = False
    class_stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    low: float = math.nan
    high: float = math.nan

    @classmethod
    def fit(cls, matrix: pd.DataFrame, aggregate: Aggregate, negative_log: bool = False) -> "ScoreScale":
        """The scale of a cohort: ``matrix`` has one row per case and one column per class (NaN = absent)."""
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        scale = cls(aggregate, negative_log)
        if aggregate != "paper":
            values = scale._class_values(matrix)
            scale.class_stats = {str(column): robust_scale(values[column].to_numpy()) for column in values.columns}
        raw = scale.raw(matrix)
        finite = raw[np.isfinite(raw)]
        if finite.size:
            scale.low, scale.high = float(finite.min()), float(finite.max())
        return scale

    def _class_values(self, matrix: pd.DataFrame) -> pd.DataFrame:
        values = matrix.astype("float64")
        if self.negative_log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = -np.log(values.where(values > 0))
        return values

    def raw(self, matrix: pd.DataFrame) -> np.ndarray:
        """The aggregated value of each case, before min-max (NaN where a case has no class value)."""
        if self.aggregate == "paper":
            total = matrix.astype("float64").sum(axis=1, min_count=1).to_numpy()
            if not self.negative_log:
                return total
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(total > 0, -np.log(total), np.nan)
        z = self.class_z(matrix)
        reduced = z.max(axis=1, skipna=True) if self.aggregate == "max" else z.mean(axis=1, skipna=True)
        return reduced.to_numpy(dtype=np.float64)

    def class_z(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """Each class value as a robust z-score over the cohort's cases holding the class (``mean``/``max`` scales)."""
        values = self._class_values(matrix)
        z = pd.DataFrame(index=values.index)
        for column in values.columns:
            median, spread = self.class_stats.get(str(column), (math.nan, math.nan))
            if not np.isfinite(median):
                z[column] = np.nan
            elif spread > 0:
                z[column] = (values[column] - median) / spread
            else:
                z[column] = (values[column] - median) * 0.0  # one case, or all equal: no evidence either way
        return z

    def place(self, matrix: pd.DataFrame) -> np.ndarray:
        """Case scores in [0, 1] on this scale (clipped); a cohort of one identical value gives 0."""
        raw = self.raw(matrix)
        span = self.high - self.low
        if not np.isfinite(span):
            return np.full(raw.shape, np.nan)
        if span == 0:
            return np.where(np.isfinite(raw), 0.0, np.nan)
        return np.clip((raw - self.low) / span, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "aggregate": self.aggregate,
            "negative_log": self.negative_log,
            "class_stats": {k: list(v) for k, v in self.class_stats.items()},
            "low": self.low,
            "high": self.high,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ScoreScale":
        return cls(
            data["aggregate"],
            bool(data.get("negative_log", False)),
            {k: (float(v[0]), float(v[1])) for k, v in data.get("class_stats", {}).items()},
            float(data["low"]),
            float(data["high"]),
        )


def warn_if_class_sets_differ(matrix: pd.DataFrame, aggregate: Aggregate, what: str) -> bool:
    """Warn (and return True) when the paper's sum is used over cases holding different class sets."""
    held = matrix.notna()
    held = held[held.any(axis=1)]  # cases that failed hold no class set
    if aggregate != "paper" or held.empty:
        return False
    sets = {tuple(matrix.columns[row]) for row in held.to_numpy()}
    if len(sets) <= 1:
        return False
    counts = held.sum(axis=1)
    warnings.warn(
        f"{what}: the cases hold different class sets ({counts.min()} to {counts.max()} classes); the paper's sum over "
        "classes then follows the class count. Consider --aggregate mean or max (per-class normalisation).",
        ClassSetWarning,
        stacklevel=2,
    )
    return True


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
    model = LedoitWolf().fit(unit)
    return np.sqrt(np.maximum(model.mahalanobis(unit), 0.0))


#: Scorers computed over the cohort from the per-class prototypes.
COHORT_SCORERS = {"prototype": prototype_scores, "mahalanobis": mahalanobis_scores}
#: The scorers ``label_check`` combines, one per kind of label error they aim at.
LABEL_CHECK_PARTS: tuple[str, ...] = ("agreement", "boundary_gradient", "consistency", "mahalanobis")


def label_check_scores(parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per case and class, the largest robust z-score of the parts' class values (NaN where none has one).

    Example:
        >>> a = pd.DataFrame({"liver": [0.1, 0.1, 0.2, 0.9]})
        >>> b = pd.DataFrame({"liver": [5.0, 1.0, 1.0, 1.0]})
        >>> label_check_scores({"a": a, "b": b})["liver"].round(1).tolist()
        [2.3, 0.0, 0.7, 10.1]
    """
    z = [ScoreScale.fit(matrix, "mean").class_z(matrix) for matrix in parts.values()]
    combined = pd.concat(z, axis=0, keys=range(len(z)))
    return combined.groupby(level=1, sort=False).max()
