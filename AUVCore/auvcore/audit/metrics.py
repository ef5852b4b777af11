"""Detection figures of an audit: AUROC and precision at the top 10% and 20%.

Positives are the corrupted cases (or, at class level, the corrupted
structures), negatives the clean ones. A score that is missing for a case is
ranked as the least suspect: a scorer that cannot score a case gets no credit
for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

TOP_FRACTIONS: tuple[float, ...] = (0.1, 0.2)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (NaN scores ranked lowest).

    Example:
        >>> auroc(np.array([0.9, 0.1, 0.8, np.nan]), np.array([True, False, True, False]))
        1.0
    """
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return math.nan
    return float(roc_auc_score(positive, _ranked(scores)))


def precision_at(scores: np.ndarray, positive: np.ndarray, fraction: float) -> float:
    """Fraction of positives among the top ``fraction`` of cases by score (at least one case).

    Example:
        >>> precision_at(np.array([0.9, 0.1, 0.8, 0.2]), np.array([True, False, False, False]), 0.5)
        0.5
    """
    count = max(1, math.ceil(fraction * len(scores)))
    order = np.argsort(-_ranked(scores), kind="stable")
    return float(np.asarray(positive, dtype=bool)[order[:count]].mean())


def _ranked(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    floor = (finite.min() - 1.0) if finite.size else 0.0
    return np.where(np.isfinite(scores), scores, floor)


def detection_table(scores: pd.DataFrame, groups: dict[str, Sequence[str]]) -> pd.DataFrame:
    """AUROC and precision@top per level, scorer, aggregate and group of corruption kinds.

    Args:
        scores: one row per (repeat, level, unit, scorer, aggregate) with
            columns ``repeat, level, unit, kind, scorer, aggregate, score``;
            ``kind`` is ``clean`` for negatives.
        groups: group name -> the kinds it pools (e.g. ``{"dilate": ["dilate"], "label": [...]}``).

    AUROC pools the repeats; precision@top is computed per repeat and averaged.
    """
    rows = []
    for (level, scorer, aggregate), part in scores.groupby(["level", "scorer", "aggregate"], sort=False):
        for group, kinds in groups.items():
            subset = part[part["kind"].isin(["clean", *kinds])]
            positive = subset["kind"].ne("clean").to_numpy()
            if not positive.any():
                continue
            row = {
                "level": level, "scorer": scorer, "aggregate": aggregate, "kind": group,
                "n_corrupted": int(positive.sum()), "n_clean": int((~positive).sum()),
                "auroc": auroc(subset["score"].to_numpy(), positive),
            }
            for fraction in TOP_FRACTIONS:
                per_repeat = [
                    precision_at(r["score"].to_numpy(), r["kind"].ne("clean").to_numpy(), fraction)
                    for _, r in subset.groupby("repeat")
                ]
                row[f"precision_top{round(fraction * 100)}"] = float(np.mean(per_repeat))
            row["base_rate"] = float(positive.mean())
            rows.append(row)
    return pd.DataFrame(rows)
