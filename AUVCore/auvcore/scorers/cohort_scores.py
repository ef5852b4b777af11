"""The cohort scorers, and ``label_check`` that combines scorers aimed at different label errors.

How class values become case scores over a cohort is :mod:`auvcore.scales`.

Cohort scorers, from the per-class inside-label prototypes of every case:

* ``prototype``: 1 - cosine similarity of a case's class prototype to the
  element-wise median of that class's prototypes over the cohort; catches a
  label on the wrong structure (a swap, a blob elsewhere).
* ``mahalanobis``: the Mahalanobis distance of the (unit) prototype to the
  cohort's distribution of that class's prototypes, with a Ledoit-Wolf
  shrunk covariance (few cases, many channels).
* ``identity``: does the structure look like the class its label claims, or
  like another class of the same case? For two classes a and b of a case, with
  unit prototypes x_a, x_b and the element-wise median unit prototypes m_a, m_b
  of the cases of the same modality: cos(x_a, m_b) + cos(x_b, m_a) - cos(x_a,
  m_a) - cos(x_b, m_b), the largest over the case's other classes b. Two
  exchanged labels (a swap, e.g. mislabelled vertebrae) make both terms of the
  pair gain, where an unusual but correct structure gains in neither. Modalities
  are kept apart because a class's CT and MR embeddings differ more than two
  classes of one modality may; where too few cases of the modality hold a
  class, its centre is the whole cohort's.

Each needs at least :data:`MIN_CASES_PER_CLASS` cases holding the class. In a cohort of several modalities
``prototype`` and ``mahalanobis`` compare a case with the cases of its own modality where that many hold the
class.

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

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..scales import JUDGED, Lookalikes, ScoreScale, robust_scale
from .registry import CASE_PARTS, COHORT_PARTS, IDENTITY, LABEL_CHECK_PARTS

MIN_CASES_PER_CLASS = 3


def prototype_scores(prototypes: Sequence[Mapping[str, np.ndarray]], modalities: Sequence[str | None] | None = None) -> list[dict[str, float]]:
    """``prototype`` per case and class: 1 - cos to the class's element-wise median prototype (over the cases of
    the same modality where at least :data:`MIN_CASES_PER_CLASS` of them hold the class, else over all).

    Example:
        >>> cases = [{"liver": np.array([1.0, 0.0])}] * 5 + [{"liver": np.array([0.0, 1.0])}]
        >>> [round(s["liver"], 3) for s in prototype_scores(cases)]
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
        >>> mr = [{"liver": np.array([0.6, 0.8])}] * 3
        >>> [round(s["liver"], 2) for s in prototype_scores(cases + mr)]  # the MR livers are judged against the CT ones
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.4, 0.4, 0.4]
        >>> [round(s["liver"], 2) for s in prototype_scores(cases + mr, ["ct"] * 6 + ["mr"] * 3)]
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    """
    return _per_class(prototypes, _cosine_to_median, modalities)


def mahalanobis_scores(prototypes: Sequence[Mapping[str, np.ndarray]], modalities: Sequence[str | None] | None = None) -> list[dict[str, float]]:
    """``mahalanobis`` per case and class, with a Ledoit-Wolf covariance of the class's unit prototypes (of the
    same modality, as :func:`prototype_scores`)."""
    return _per_class(prototypes, _mahalanobis, modalities)


def identity_scores(prototypes: Sequence[Mapping[str, np.ndarray]], modalities: Sequence[str | None]) -> list[dict[str, float]]:
    """``identity`` per case and class: how much better the class and another class of its case fit each other's
    centre (over the cases of the same modality, else the cohort) than their own; the largest over the case's
    other classes.

    Example:
        >>> liver, spleen, kidney = np.eye(3)
        >>> cases = [{"liver": liver, "spleen": spleen, "kidney": kidney}] * 3
        >>> swapped = [*cases, {"liver": spleen, "spleen": liver, "kidney": kidney}]
        >>> [round(s["liver"], 2) for s in identity_scores(swapped, ["ct"] * 4)]
        [-2.0, -2.0, -2.0, 2.0]
        >>> [round(s["liver"], 2) for s in identity_scores(swapped, ["ct", "ct", "ct", "mr"])]  # one MR case: the cohort's centres
        [-2.0, -2.0, -2.0, 2.0]
        >>> identity_scores(swapped[:2], ["ct"] * 2)  # fewer than 3 cases hold each class
        [{}, {}]
    """
    units = [{name: _unit(vector) for name, vector in case.items() if np.all(np.isfinite(vector))} for case in prototypes]
    cohort = _median_centres(units)
    by_modality = {m: _median_centres([case for case, mine in zip(units, modalities) if mine == m]) for m in set(modalities) if m}
    scores: list[dict[str, float]] = []
    for case, modality in zip(units, modalities):
        centres = {**cohort, **by_modality.get(modality, {})}
        names = [name for name in case if name in centres]
        if len(names) < 2:
            scores.append({})
            continue
        vectors = np.stack([case[name] for name in names])
        fit = vectors @ np.stack([centres[name] for name in names]).T  # fit[a, b] = cos(x_a, m_b)
        own = np.diag(fit)
        exchanged = fit + fit.T - own[:, None] - own[None, :]
        np.fill_diagonal(exchanged, -np.inf)
        scores.append({name: float(value) for name, value in zip(names, exchanged.max(axis=1))})
    return scores


def _median_centres(units: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each class's element-wise median unit prototype, where at least :data:`MIN_CASES_PER_CLASS` cases hold it."""
    centres = {}
    for name in {name for case in units for name in case}:
        held = [case[name] for case in units if name in case]
        if len(held) >= MIN_CASES_PER_CLASS:
            centres[name] = _unit(np.median(np.stack(held), axis=0))
    return centres


def _unit(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (one, or one per row) scaled to unit length, in float64."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _per_class(prototypes: Sequence[Mapping[str, np.ndarray]], measure,
               modalities: Sequence[str | None] | None = None) -> list[dict[str, float]]:
    """``measure`` over each class's holders: those of a modality with enough of them among themselves, the rest
    (of unknown modality, or all without ``modalities``) among every holder."""
    scores: list[dict[str, float]] = [{} for _ in prototypes]
    labels = [None] * len(prototypes) if modalities is None else [m or None for m in modalities]
    classes = sorted({name for case in prototypes for name in case})
    for name in classes:
        holders = [i for i, case in enumerate(prototypes) if name in case and np.all(np.isfinite(case[name]))]
        if len(holders) < MIN_CASES_PER_CLASS:
            continue
        groups = [[i for i in holders if labels[i] == m] for m in sorted({labels[i] for i in holders} - {None})]
        own = [g for g in groups if len(g) >= MIN_CASES_PER_CLASS] if len(groups) > 1 else []
        rest = set(holders) - {i for g in own for i in g}
        for group, judged in [*((g, set(g)) for g in own), (holders, rest)]:
            if not judged:
                continue
            vectors = np.stack([np.asarray(prototypes[i][name], dtype=np.float64) for i in group])
            for i, value in zip(group, measure(_unit(vectors))):
                if i in judged:
                    scores[i][name] = float(value)
    return scores


def _cosine_to_median(unit: np.ndarray) -> np.ndarray:
    return 1.0 - unit @ _unit(np.median(unit, axis=0))


def _mahalanobis(unit: np.ndarray) -> np.ndarray:
    from sklearn.covariance import LedoitWolf  # scikit-learn is loaded when a cohort is scored, not on import

    model = LedoitWolf().fit(unit)
    return np.sqrt(np.maximum(model.mahalanobis(unit), 0.0))


CohortScorer = Callable[[Sequence[Mapping[str, np.ndarray]], Sequence[str | None]], list[dict[str, float]]]
#: Scorers computed over the cohort from the cases' per-class prototypes and modalities.
COHORT_SCORERS: dict[str, CohortScorer] = {
    "prototype": prototype_scores,
    "mahalanobis": mahalanobis_scores,
    IDENTITY: identity_scores,
}


@dataclass(frozen=True)
class LabelCheck:
    """``label_check`` of a cohort: per case (rows) and class (columns) its value, and the parts it was made of
    (their names, space-separated, in :data:`LABEL_CHECK_PARTS`' order; "" where it has no value)."""

    values: pd.DataFrame
    parts: pd.DataFrame


def _judged(held: pd.DataFrame, modalities: Sequence[str | None] | None) -> pd.DataFrame:
    """Whether each structure is judged against its look-alikes: the rule of :class:`~auvcore.scales.Lookalikes`,
    the one ``structures.csv`` reports as ``judged_against``.

    Example:
        >>> held = pd.DataFrame({"liver": [True, True, True, True], "tumour": [True, False, True, False]})
        >>> _judged(held, ["ct", "ct", "ct", "mr"]).values.tolist()  # the one MR liver has none
        [[True, False], [True, False], [True, False], [False, False]]
    """
    lookalikes = Lookalikes.of(held.where(held), modalities)
    rows = modalities if modalities is not None else [None] * len(held)
    judged = [[lookalikes.basis(modality, str(name))[0] == JUDGED for name in held.columns] for modality in rows]
    return held & pd.DataFrame(judged, index=held.index, columns=held.columns)


def _pooled_z(matrix: pd.DataFrame, two_sided: bool) -> pd.DataFrame:
    """Each value's robust z against every structure of the cohort, whatever its class."""
    centre, spread = robust_scale(matrix.to_numpy(dtype=np.float64).ravel())
    if not np.isfinite(spread) or spread <= 0:
        return matrix * 0.0
    z = (matrix.astype("float64") - centre) / spread
    return z.abs() if two_sided else z


def label_check_scores(parts: Mapping[str, pd.DataFrame], modalities: Sequence[str | None] | None = None) -> LabelCheck:
    """``label_check``: per case and class, the sum of its parts' positive robust z (NaN where no part has one).

    The parts of :data:`COHORT_PARTS` count only for a structure with look-alikes (:func:`_judged`), their
    z against its class (within its modality, as :class:`~auvcore.scales.ScoreScale`). The case-intrinsic parts
    (:data:`CASE_PARTS`) count for every structure: their z against the structure's class where it has
    look-alikes, else against every structure of the cohort; a signed part's z is |z|.

    Example:
        >>> a = pd.DataFrame({"liver": [0.1, 0.1, 0.2, 0.9]})
        >>> b = pd.DataFrame({"liver": [5.0, 1.0, 1.0, 1.0]})
        >>> label_check_scores({"agreement": a, "consistency": b}).values["liver"].round(1).tolist()
        [2.3, 0.0, 0.7, 10.1]
        >>> lone = pd.DataFrame({"liver": [0.1, 0.1, 0.2, np.nan], "tumour": [np.nan, np.nan, np.nan, 0.9]})
        >>> check = label_check_scores({"agreement": lone, "missed_slices": lone})
        >>> check.parts["tumour"].tolist()[3], check.parts["liver"].tolist()[0]  # the tumour has no look-alikes
        ('missed_slices', 'agreement missed_slices')
    """
    from .registry import scale_options

    held = pd.concat([matrix.notna() for matrix in parts.values()]).groupby(level=0, sort=False).any()
    held = held.reindex(index=next(iter(parts.values())).index)
    alike = _judged(held, modalities)
    contributions = {}
    for name, matrix in parts.items():
        two_sided = scale_options(name)["two_sided"]
        z = ScoreScale.fit(matrix, "mean", modalities=modalities, two_sided=two_sided).class_z(matrix, modalities)
        z = z.where(alike) if name in COHORT_PARTS else z.where(alike, _pooled_z(matrix, two_sided))
        contributions[name] = z.where(matrix.notna()).clip(lower=0.0)
    values = pd.concat(contributions.values(), axis=0, keys=range(len(contributions))).groupby(level=1, sort=False).sum(min_count=1)
    values = values.reindex(index=held.index, columns=held.columns)
    names = [name for name in LABEL_CHECK_PARTS if name in contributions] + [n for n in contributions if n not in LABEL_CHECK_PARTS]
    used = pd.DataFrame("", index=held.index, columns=held.columns, dtype=object)
    for name in names:
        has = contributions[name].reindex(index=held.index, columns=held.columns).notna()
        used = used.where(~has, used + " " + name)
    return LabelCheck(values, used.apply(lambda column: column.str.strip()))
