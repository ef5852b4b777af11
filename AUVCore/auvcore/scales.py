"""Cohort scales: how per-class values become case scores in [0, 1] over a cohort, and back.

Torch-free (numpy; pandas when a scale is fitted or applied), so reading a
results folder or placing a case on a saved scale needs no model.

* :func:`cohort_auv` / :class:`CohortReference`: the paper's AUV,
  ``AUV_i = (a_i - min a) / (max a - min a)`` with ``a_i = -log S(Z_i)`` (SPEC §3).
* :class:`ScoreScale`: any scorer's class values aggregated per case
  (``--aggregate paper|mean|max``), then min-max over the cohort:

  * ``paper``: the paper's rule. For ``auv``: a_i = -log(sum_c S_ic); for any
    other scorer, the sum of its class values. When cases hold different class
    sets the sum follows the class count, so a :class:`ClassSetWarning` is raised.
  * ``mean`` / ``max``: each class is normalised over the cases that hold it,
    as a robust z-score (value - median) / (1.4826 MAD), then a case takes the
    mean or the max over its classes. For ``auv`` the class value is -log S_ic.
    In a cohort of several modalities a case's class is centred on the median
    of the cases of its own modality where at least
    :data:`MIN_CASES_PER_MODALITY` of them hold the class (else on the
    cohort's), with the spread taken about those medians over every case: an
    MR liver is not unusual for not looking like the CT livers.
  * ``calibrated`` / ``fisher``: each structure's robust z becomes a tail
    probability under its class's cohort distribution, combined per case with
    Šidák's min-p or Fisher's method (:mod:`auvcore.calibration`), so a case
    with many structures is not flagged for its largest chance deviation. The
    case score is 1 - p, not min-max normalised.

In every case the result is in [0, 1], higher = more suspect, and a saved scale
places new cases on the same scale (clipped to [0, 1]).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Aggregate = Literal["paper", "mean", "max", "calibrated", "fisher"]
AGGREGATES: tuple[str, ...] = ("paper", "mean", "max", "calibrated", "fisher")
#: Aggregates whose case score is 1 - a p-value (:mod:`auvcore.calibration`): already on a fixed scale, no min-max.
CALIBRATED: tuple[str, ...] = ("calibrated", "fisher")
MAD_TO_SIGMA = 1.4826
#: The fewest cases of one modality holding a class for the class to be normalised within that modality.
MIN_CASES_PER_MODALITY = 3


#: Decimals a score keeps when it orders cases or structures. Rescoring on another CPU, thread count or runtime
#: moves cohort values by up to about 1e-4 relative, and robust z over a few cases ties exactly in exact
#: arithmetic (the top of 3 cases is always 0.6745), so an order by full floats would be decided by round-off.
#: Values equal to this many decimals are tied, and ties break by the next key, then by name.
RANK_DECIMALS = 6


def rank_value(value: float) -> float:
    """``value`` as it orders: rounded to :data:`RANK_DECIMALS` (NaN and infinities as they are).

    Example:
        >>> rank_value(0.6744907594765953) == rank_value(0.6744907594765952)
        True
    """
    return round(value, RANK_DECIMALS) if math.isfinite(value) else value


class CohortWarning(UserWarning):
    """Something about a cohort's scores that its user should read (``auv`` prints these as ``warning:`` lines)."""


class ClassSetWarning(CohortWarning):
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
        class_stats: class -> (median, spread) of its values over the cohort (all but ``paper``).
        low, high: the cohort's min and max of the aggregated value (0 and 1 for the calibrated ones).
        class_reference: class -> the cohort's sorted z of the class (the calibrated ones' tail probabilities).
        modality_stats: modality -> class -> (median of the modality's cases, spread about their own modality's
            medians over all cases), for the classes held by at least :data:`MIN_CASES_PER_MODALITY` cases of the
            modality, in a cohort of several modalities. A case's class is put on its modality's statistics where
            there are some, else on the cohort's. Only the centre is the modality's own: the spread and the
            calibrated reference come from every case, as a few MR cases are too few to say how far is far.
        two_sided: the class values are signed (a label too big or too small): a structure's z is |z|, and the
            ``paper`` sum adds each class's distance from its median.
    """

    aggregate: Aggregate
    negative_log: bool = False
    class_stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    low: float = math.nan
    high: float = math.nan
    class_reference: dict[str, list[float]] = field(default_factory=dict)
    modality_stats: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    two_sided: bool = False

    @classmethod
    def fit(cls, matrix: pd.DataFrame, aggregate: Aggregate, negative_log: bool = False, in_z_units: bool = False,
            modalities: Sequence[str | None] | None = None, two_sided: bool = False) -> "ScoreScale":
        """The scale of a cohort: ``matrix`` has one row per case and one column per class (NaN = absent).

        ``in_z_units``: the class values are already on a z scale shared by every class (``label_check``,
        a sum of robust z), so they are taken as they are. Standardising them again divides by the spread of
        a sum that is 0 for most structures of a class, and puts a clean structure of a quiet class above a
        corrupted one of a busy class.

        ``modalities``: each row's modality (``ct``, ``mr``); with more than one, classes are normalised within
        each modality where enough of its cases hold them.

        Example:
            >>> import pandas as pd
            >>> sums = pd.DataFrame({"liver": [0.0, 0.0, 0.1, 3.0], "aorta": [0.0, 2.0, 4.0, 6.0]})
            >>> ScoreScale.fit(sums, "max", in_z_units=True).class_z(sums)["liver"].tolist()
            [0.0, 0.0, 0.1, 3.0]
            >>> livers = pd.DataFrame({"liver": [1.0, 2.0, 3.0, 4.0, 5.0, 21.0, 22.0, 23.0]})
            >>> ct_mr = ["ct"] * 5 + ["mr"] * 3
            >>> ScoreScale.fit(livers, "max").class_z(livers)["liver"].round(1).tolist()  # every MR liver looks unusual
            [-0.8, -0.6, -0.3, -0.1, 0.1, 3.7, 3.9, 4.2]
            >>> ScoreScale.fit(livers, "max", modalities=ct_mr).class_z(livers, ct_mr)["liver"].round(1).tolist()
            [-1.3, -0.7, 0.0, 0.7, 1.3, -0.7, 0.0, 0.7]
            >>> unknown = ["ct"] * 5 + [None] * 3  # no modality saved: the cohort's statistics
            >>> ScoreScale.fit(livers, "max", modalities=unknown).class_z(livers, unknown)["liver"].round(1).tolist()
            [-0.8, -0.6, -0.3, -0.1, 0.1, 3.7, 3.9, 4.2]
        """
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        scale = cls(aggregate, negative_log, two_sided=two_sided)
        if aggregate != "paper" or two_sided:
            values = scale._class_values(matrix)
            scale.class_stats = {str(column): (0.0, 1.0) if in_z_units and values[column].notna().any()
                                 else robust_scale(values[column].to_numpy()) for column in values.columns}
            if not in_z_units:
                scale.modality_stats = _modality_stats(values, _modality_rows(modalities, values.index), scale.class_stats)
        if aggregate in CALIBRATED:
            z = scale.class_z(matrix, modalities)
            scale.class_reference = {str(c): sorted(float(v) for v in z[c] if np.isfinite(v)) for c in z.columns}
            scale.low, scale.high = 0.0, 1.0
            return scale
        raw = scale.raw(matrix, modalities)
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

    def _row_stats(self, column: str, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's (median, spread) for ``column``: its modality's (``labels``, :func:`_modality_labels`) where
        :attr:`modality_stats` has them, else the cohort's (NaN where neither has the class)."""
        median, spread = np.full(len(labels), math.nan), np.full(len(labels), math.nan)
        median[:], spread[:] = self.class_stats.get(column, (math.nan, math.nan))
        for modality, stats in self.modality_stats.items():
            if column in stats:
                mine = labels == modality
                median[mine], spread[mine] = stats[column]
        return median, spread

    def raw(self, matrix: pd.DataFrame, modalities: Sequence[str | None] | None = None) -> np.ndarray:
        """The aggregated value of each case, before min-max (NaN where a case has no class value)."""
        if self.aggregate == "paper" and self.two_sided:
            import pandas as pd

            values, labels = self._class_values(matrix), _modality_labels(modalities, len(matrix))
            distances = {column: np.abs(values[column].to_numpy(dtype=np.float64) - self._row_stats(str(column), labels)[0])
                         for column in values.columns}
            return pd.DataFrame(distances, index=values.index).sum(axis=1, min_count=1).to_numpy()
        if self.aggregate == "paper":
            total = matrix.astype("float64").sum(axis=1, min_count=1).to_numpy()
            if not self.negative_log:
                return total
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(total > 0, -np.log(total), np.nan)
        z = self.class_z(matrix, modalities)
        if self.aggregate in CALIBRATED:
            from .calibration import combine, tail_probability

            p = np.full(z.shape, np.nan)
            for index, column in enumerate(z.columns):
                reference = self.class_reference.get(str(column))
                if reference:
                    p[:, index] = tail_probability(z[column].to_numpy(dtype=np.float64), np.asarray(reference))
            return 1.0 - combine(list(p), self.aggregate)
        reduced = z.max(axis=1, skipna=True) if self.aggregate == "max" else z.mean(axis=1, skipna=True)
        return reduced.to_numpy(dtype=np.float64)

    def class_z(self, matrix: pd.DataFrame, modalities: Sequence[str | None] | None = None) -> pd.DataFrame:
        """Each class value as a robust z-score over the cohort's cases holding the class (of the same modality
        where :attr:`modality_stats` has it); ``modalities`` gives each row's."""
        import pandas as pd

        values = self._class_values(matrix)
        labels = _modality_labels(modalities, len(values))
        z = pd.DataFrame(index=values.index)
        for column in values.columns:
            median, spread = self._row_stats(str(column), labels)
            centred = values[column].to_numpy(dtype=np.float64) - median
            with np.errstate(divide="ignore", invalid="ignore"):
                # one case, or all equal: no evidence either way
                z[column] = np.where(spread > 0, centred / spread, centred * 0.0)
        return z.abs() if self.two_sided else z

    def place(self, matrix: pd.DataFrame, modalities: Sequence[str | None] | None = None) -> np.ndarray:
        """Case scores in [0, 1] on this scale (clipped); a cohort of one identical value gives 0."""
        raw = self.raw(matrix, modalities)
        span = self.high - self.low
        if not np.isfinite(span):
            return np.full(raw.shape, np.nan)
        if span == 0:
            return np.where(np.isfinite(raw), 0.0, np.nan)
        return np.clip((raw - self.low) / span, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "aggregate": self.aggregate,
            "negative_log": self.negative_log,
            "class_stats": {k: list(v) for k, v in self.class_stats.items()},
            "low": self.low,
            "high": self.high,
        }
        if self.class_reference:
            data["class_reference"] = {k: list(v) for k, v in self.class_reference.items()}
        if self.modality_stats:
            data["modality_stats"] = {m: {k: list(v) for k, v in c.items()} for m, c in self.modality_stats.items()}
        if self.two_sided:
            data["two_sided"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ScoreScale":
        return cls(
            data["aggregate"],
            bool(data.get("negative_log", False)),
            {k: (float(v[0]), float(v[1])) for k, v in data.get("class_stats", {}).items()},
            float(data["low"]),
            float(data["high"]),
            {k: [float(x) for x in v] for k, v in data.get("class_reference", {}).items()},
            {m: {k: (float(v[0]), float(v[1])) for k, v in c.items()} for m, c in data.get("modality_stats", {}).items()},
            bool(data.get("two_sided", False)),
        )


def _modality_labels(modalities: Sequence[str | None] | None, rows: int) -> np.ndarray:
    """Each row's modality as an array, "" where unknown (None: records written before it was saved, or no
    ``modalities`` given): such rows belong to no modality and keep the cohort's statistics."""
    if modalities is None:
        return np.full(rows, "", dtype=object)
    if len(modalities) != rows:
        raise ValueError(f"{len(modalities)} modalities for {rows} cases")
    return np.array([m or "" for m in modalities], dtype=object)


def _modality_rows(modalities: Sequence[str | None] | None, index: pd.Index) -> dict[str, np.ndarray]:
    """Each modality's row mask, when the rows hold more than one known modality (else nothing to keep apart)."""
    labels = _modality_labels(modalities, len(index))
    kinds = sorted(set(labels) - {""})
    return {m: labels == m for m in kinds} if len(kinds) > 1 else {}


def _modality_stats(values: pd.DataFrame, rows: Mapping[str, np.ndarray],
                    pooled: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per modality and class: its cases' median, and the robust spread of every case about its own modality's
    median (the cohort's where its modality has too few cases of the class)."""
    stats: dict[str, dict[str, tuple[float, float]]] = {m: {} for m in rows}
    for column in values.columns:
        held = {m: values.loc[mine, column].dropna().to_numpy() for m, mine in rows.items()}
        centres = {m: float(np.median(v)) for m, v in held.items() if v.size >= MIN_CASES_PER_MODALITY}
        if not centres:
            continue
        residuals = np.concatenate([v - centres.get(m, pooled[str(column)][0]) for m, v in held.items()])
        spread = robust_scale(residuals)[1]
        for modality, centre in centres.items():
            stats[modality][str(column)] = (centre, spread)
    return {m: s for m, s in stats.items() if s}


#: What a structure's z was judged against (:class:`Lookalikes`): enough cases of its class and modality ...
JUDGED = "modality"
#: ... the whole cohort's cases of its class, other modalities included, as its modality has too few ...
POOLED = "pooled"
#: ... or nothing worth the name: fewer than :data:`MIN_CASES_PER_MODALITY` cases of the cohort hold the class.
UNJUDGED = "none"


@dataclass(frozen=True)
class Lookalikes:
    """How many cases of each modality hold each class: what a structure can be judged against.

    A structure is judged (``modality``) where at least :data:`MIN_CASES_PER_MODALITY` cases of its own modality
    hold its class, itself included: the rule :class:`ScoreScale` centres a class by. In a cohort of one known
    modality (cases of unknown modality count with it) the cohort is that modality. Otherwise its z is against
    the cohort's cases of the class, mostly of another modality (``pooled``), or against fewer than that many
    cases (``none``): either way not comparable with the judged ones, and said so rather than ranked among them.
    The same counts, saved in ``reference.json``, judge a case placed on the cohort: an MR case on a CT cohort is
    not judged against it.

    Attributes:
        counts: modality -> class -> cases holding the class (``""``: cases of unknown modality).
        pooled: class -> cases of the whole cohort holding it.

    Example:
        >>> import pandas as pd
        >>> held = pd.DataFrame({"liver": [1.0] * 4, "colon": [1.0, 1.0, 1.0, None]})
        >>> cohort = Lookalikes.of(held, ["ct", "ct", "ct", "mr"])
        >>> cohort.basis("ct", "liver"), cohort.basis("mr", "liver"), cohort.basis("mr", "spleen")
        (('modality', 3), ('pooled', 1), ('none', 0))
        >>> cohort.why("mr", "liver")
        'judged against the cohort: only 1 mr case holds liver (3 needed); its z is against 4 cases of any modality'
        >>> ct_only = Lookalikes.of(held.iloc[:3], ["ct"] * 3)
        >>> ct_only.basis("ct", "colon"), ct_only.basis(None, "colon"), ct_only.basis("mr", "colon")
        (('modality', 3), ('modality', 3), ('pooled', 0))
    """

    counts: dict[str, dict[str, int]]
    pooled: dict[str, int]

    @classmethod
    def of(cls, matrix: pd.DataFrame, modalities: Sequence[str | None] | None = None) -> "Lookalikes":
        """The counts of a class matrix (one row per case, NaN where the case lacks the class) and its rows' modalities."""
        held = matrix.notna()
        labels = _modality_labels(modalities, len(matrix))
        counts = {}
        for modality in sorted(set(labels)):
            per_class = held[labels == modality].sum(axis=0)
            counts[str(modality)] = {str(c): int(n) for c, n in per_class.items() if n}
        return cls(counts, {str(c): int(n) for c, n in held.sum(axis=0).items() if n})

    @property
    def known(self) -> list[str]:
        """The cohort's known modalities."""
        return sorted(set(self.counts) - {""})

    def own_cases(self, modality: str | None, class_name: str) -> int:
        """How many cases of the structure's modality hold its class (the whole cohort's, in a cohort of one modality)."""
        modality = modality or ""
        if len(self.known) <= 1 and (modality == "" or modality in self.known):
            return self.pooled.get(class_name, 0)
        if modality == "":  # unknown, among several modalities: it keeps the cohort's statistics
            return 0
        return self.counts.get(modality, {}).get(class_name, 0)

    def basis(self, modality: str | None, class_name: str) -> tuple[str, int]:
        """(what the structure is judged against: ``modality``, ``pooled`` or ``none``; :meth:`own_cases`)."""
        own = self.own_cases(modality, class_name)
        if own >= MIN_CASES_PER_MODALITY:
            return JUDGED, own
        return (POOLED if self.pooled.get(class_name, 0) >= MIN_CASES_PER_MODALITY else UNJUDGED), own

    def why(self, modality: str | None, class_name: str) -> str:
        """One line saying what the structure was judged against ("" when it was judged against its own modality)."""
        judged_against, own = self.basis(modality, class_name)
        return unjudged_reason(judged_against, own, modality, class_name, self.pooled.get(class_name, 0))

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "pooled": self.pooled}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Lookalikes":
        return cls({str(m): {str(c): int(n) for c, n in v.items()} for m, v in data.get("counts", {}).items()},
                   {str(c): int(n) for c, n in data.get("pooled", {}).items()})


def unjudged_reason(judged_against: str, modality_cases: int, modality: str | None, class_name: str,
                    cohort_cases: int | None = None) -> str:
    """Why a structure was not judged against its own modality's cases ("" when it was), from ``structures.csv``'s fields.

    Example:
        >>> unjudged_reason("none", 1, "mr", "colon")
        'not judged: only 1 mr case holds colon (3 needed), and too few cases of any modality'
        >>> unjudged_reason("pooled", 0, None, "liver", 14)
        'judged against the cohort: its modality is not recorded; its z is against 14 cases of any modality'
    """
    if judged_against not in (POOLED, UNJUDGED):
        return ""
    if not modality and judged_against == POOLED:
        own = "its modality is not recorded"
    else:
        cases = f"{modality_cases} {modality + ' ' if modality else ''}case{'' if modality_cases == 1 else 's'}"
        own = f"only {cases} {'holds' if modality_cases == 1 else 'hold'} {class_name} ({MIN_CASES_PER_MODALITY} needed)"
    if judged_against == POOLED:
        against = f"{cohort_cases} cases" if cohort_cases else "the cohort's cases"
        return f"judged against the cohort: {own}; its z is against {against} of any modality"
    return f"not judged: {own}, and too few cases of any modality"


def class_set_advice(fewest: int, most: int) -> str:
    """The one line said wherever cases of different class sets get the paper's AUV (``auv score`` and the report).

    Example:
        >>> class_set_advice(1, 40)[:62]
        'the cases hold different class sets (1 to 40 classes), so the '
    """
    return (f"the cases hold different class sets ({fewest} to {most} classes), so the AUV, the paper's sum over classes, "
            "follows how many classes a case holds: rank cases with --aggregate calibrated, which judges each structure "
            "against its own class")


def warn_if_class_sets_differ(matrix: pd.DataFrame, aggregate: Aggregate) -> bool:
    """Warn (and return True) when the paper's sum is used over cases holding different class sets."""
    held = matrix.notna()
    held = held[held.any(axis=1)]  # cases that failed hold no class set
    if aggregate != "paper" or held.empty:
        return False
    sets = {tuple(matrix.columns[row]) for row in held.to_numpy()}
    if len(sets) <= 1:
        return False
    counts = held.sum(axis=1)
    warnings.warn(class_set_advice(int(counts.min()), int(counts.max())), ClassSetWarning, stacklevel=2)
    return True


@dataclass(frozen=True)
class CohortReference:
    """The normalisation of a scored cohort, used to place new cases on its AUV scale.

    Attributes:
        a_min: smallest ``-log S`` in the cohort.
        a_max: largest finite ``-log S`` in the cohort.
        n_cases: how many cases defined it.
    """

    a_min: float
    a_max: float
    n_cases: int

    def place(self, total_scales: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """AUV of new case(s) on this cohort's scale, clipped to [0, 1]; NaN stays NaN.

        Example:
            >>> ref = CohortReference(a_min=0.0, a_max=1.0, n_cases=10)
            >>> ref.place([1.0, math.exp(-0.5), 1e-9]).round(3).tolist()
            [0.0, 0.5, 1.0]
        """
        return self._scale(_neg_log(total_scales))

    def _scale(self, a: np.ndarray) -> np.ndarray:
        span = self.a_max - self.a_min
        if span <= 0:
            placed = np.where(a > self.a_max, 1.0, 0.0)
        else:
            with np.errstate(invalid="ignore"):
                placed = (a - self.a_min) / span
        placed = np.clip(placed, 0.0, 1.0) + 0.0
        return np.where(np.isnan(a), np.nan, placed)

    def to_dict(self) -> dict[str, float | int]:
        return {"a_min": self.a_min, "a_max": self.a_max, "n_cases": self.n_cases}

    @classmethod
    def from_dict(cls, data: dict) -> "CohortReference":
        return cls(float(data["a_min"]), float(data["a_max"]), int(data["n_cases"]))


@dataclass(frozen=True)
class CohortAUV:
    """AUV per case of one cohort, and the reference that produced it."""

    values: np.ndarray
    reference: CohortReference


def _neg_log(total_scales: float | Sequence[float] | np.ndarray) -> np.ndarray:
    s = np.atleast_1d(np.asarray(total_scales, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, -np.log(np.where(s > 0, s, 1.0)), np.where(np.isnan(s), np.nan, np.inf))


def cohort_auv(total_scales: Sequence[float] | np.ndarray) -> CohortAUV:
    """AUV_i = (a_i - min a) / (max a - min a) with a_i = -log S(Z_i), over one cohort.

    Cases with NaN S get NaN AUV and do not define the range. A case with S = 0
    (all its classes rank one) is infinitely hard: AUV 1, outside the range.
    When every defined case has the same S the range is empty and every AUV is 0.

    Example:
        >>> result = cohort_auv([2.0, 1.0, 0.5])
        >>> result.values.round(3).tolist()
        [0.0, 0.5, 1.0]
    """
    a = _neg_log(total_scales)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        reference = CohortReference(math.nan, math.nan, 0)
        values = np.where(np.isinf(a), 1.0, np.nan)
        return CohortAUV(values, reference)
    reference = CohortReference(float(finite.min()), float(finite.max()), int(finite.size))
    return CohortAUV(reference._scale(a), reference)
