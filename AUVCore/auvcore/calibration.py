"""Calibrated case scores: each structure's robust z as a tail probability, combined over the case's structures.

A case with 40 structures has 40 chances of one looking unusual by chance, so
taking the largest z flags clean cases. Here each structure's z becomes a
p-value under its own class's distribution in the cohort, and the case's
p-value accounts for how many structures it has:

* tail probability: empirical in the body, ``(1 + #{cohort z >= z}) / (n + 1)``,
  and above the cohort's 80th percentile q a Student-t tail with n - 1
  degrees of freedom joined to it there (``p(q) * sf(z) / sf(q)``): the
  empirical p of the cohort's own extremes cannot go below ``2 / (n + 1)``
  however far out they lie, the smoothed tail can; the t (not a normal) tail
  because a class held by few cases has a poorly known spread, so its
  extremes are less surprising;
* ``calibrated``: the smallest p with Šidák's correction, ``1 - (1 - p_min)^k``;
* ``fisher``: Fisher's method, ``-2 sum log p`` against chi-squared with 2k
  degrees of freedom.

The case score is ``1 - p_case`` in [0, 1], higher = more suspect.

Example:
    >>> reference = np.linspace(-2.0, 2.0, 9)
    >>> tail_probability(np.array([-1.0, 0.0, 3.0, 5.0]), reference).round(4).tolist()
    [0.8, 0.6, 0.0194, 0.0012]
    >>> round(float(combine([np.array([0.01, 0.5, 0.5])], "calibrated")[0]), 4)
    0.0297
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np

Rule = Literal["calibrated", "fisher"]
RULES: tuple[str, ...] = ("calibrated", "fisher")
#: Where the empirical body hands over to the normal tail.
TAIL_QUANTILE = 0.8


def tail_probability(z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """P(Z >= z) for each z under the cohort's z of the class (``reference``); NaN stays NaN.

    Raises:
        ValueError: an empty reference (no case of the cohort holds the class).
    """
    reference = np.sort(np.asarray(reference, dtype=np.float64)[np.isfinite(reference)])
    if reference.size == 0:
        raise ValueError("no cohort value to compare with")
    z = np.asarray(z, dtype=np.float64)
    n = reference.size

    def empirical(values: np.ndarray) -> np.ndarray:
        return (1.0 + n - np.searchsorted(reference, values, side="left")) / (n + 1.0)

    p = empirical(z)
    join = np.quantile(reference, TAIL_QUANTILE)
    tail = z > join
    if tail.any():
        from scipy.stats import t as student_t  # loaded when a calibrated score is asked for

        degrees = max(n - 1, 1)
        at_join = float(empirical(np.array([join]))[0])
        p[tail] = at_join * student_t.sf(z[tail], degrees) / max(float(student_t.sf(join, degrees)), np.finfo(np.float64).tiny)
    return np.where(np.isnan(z), np.nan, p)


def combine(p_rows: Sequence[np.ndarray], rule: Rule) -> np.ndarray:
    """One p-value per case from its structures' p-values (NaN ignored; a case with none is NaN)."""
    combined = np.full(len(p_rows), np.nan)
    for index, row in enumerate(p_rows):
        p = np.asarray(row, dtype=np.float64)
        p = np.clip(p[np.isfinite(p)], np.finfo(np.float64).tiny, 1.0)
        if p.size == 0:
            continue
        if rule == "calibrated":
            combined[index] = -math.expm1(p.size * math.log1p(-min(float(p.min()), 1.0 - 1e-16)))
        elif rule == "fisher":
            from scipy.special import gammaincc  # chi-squared survival with 2k degrees of freedom

            combined[index] = float(gammaincc(p.size, -np.log(p).sum()))
        else:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return combined
