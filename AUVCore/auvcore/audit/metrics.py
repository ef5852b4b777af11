"""Detection figures of an audit: AUROC, precision at the top 10% and 20%, and at the top 20 structures.

Positives are the corrupted cases (or, at class level, the corrupted
structures), negatives the clean ones. A score that is missing for a case is
ranked as the least suspect: a scorer that cannot score a case gets no credit
for it. Structures are judged at a fixed count, the first page a reviewer
opens, rather than at a share of a number that grows with the cohort.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

TOP_FRACTIONS: tuple[float, ...] = (0.1, 0.2)
#: How many of the most suspect structures a reviewer is assumed to look at.
TOP_STRUCTURES = 20


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
    return precision_at_count(scores, positive, max(1, math.ceil(fraction * len(scores))))


def precision_at_count(scores: np.ndarray, positive: np.ndarray, count: int) -> float:
    """Fraction of positives among the ``count`` highest scores (among all of them when there are fewer).

    With fewer than ``count`` positives it cannot reach 1: its best is ``positives / count``.

    Example:
        >>> precision_at_count(np.array([0.9, 0.1, 0.8, 0.2]), np.array([True, False, True, False]), 3)
        0.6666666666666666
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
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


def structure_detection(scores: pd.DataFrame, label_kinds: Sequence[str], count: int = TOP_STRUCTURES) -> pd.DataFrame:
    """Per scorer: corrupted structures against the structures of clean cases, pooled over ``label_kinds`` then per kind.

    Args:
        scores: the ``class`` level rows of the audit's scores (columns ``repeat, kind, scorer, score``;
            ``score`` is the structure's robust z within its class, ``kind`` is ``clean`` for negatives).
        label_kinds: the label corruption kinds planted, in the order the rows follow.
        count: precision is taken among this many most suspect structures of each repeat's cohort
            (all of them when it holds fewer) and averaged over the repeats that planted the kind; ``best`` is what a perfect
            score would reach there, below 1 when there are fewer corrupted structures than ``count``.

    Returns one row per (scorer, kind) with ``kind`` ``label`` for the pool, scorers ordered by their
    pooled AUROC, best first.

    Example:
        >>> rows = [{"repeat": 0, "kind": k, "scorer": "a", "score": z}
        ...         for k, z in [("dilate", 3.0), ("erode", 0.5), ("clean", 1.0), ("clean", -1.0)]]
        >>> table = structure_detection(pd.DataFrame(rows), ["dilate", "erode"], count=2)
        >>> table[["kind", "auroc", "precision_top2", "best_top2"]].values.tolist()
        [['label', 0.75, 0.5, 1.0], ['dilate', 1.0, 0.5, 0.5], ['erode', 0.5, 0.5, 0.5]]
    """
    precision, best = f"precision_top{count}", f"best_top{count}"
    rows = []
    groups = {"label": list(label_kinds), **{kind: [kind] for kind in label_kinds}}
    for scorer, part in scores.groupby("scorer", sort=False):
        for group, kinds in groups.items():
            subset = part[part["kind"].isin(["clean", *kinds])]
            positive = subset["kind"].ne("clean").to_numpy()
            if not positive.any():
                continue
            repeats = [(r["score"].to_numpy(), r["kind"].ne("clean").to_numpy()) for _, r in subset.groupby("repeat")]
            repeats = [(s, p) for s, p in repeats if p.any()]  # a repeat that planted none of these kinds says nothing of them
            rows.append({
                "scorer": scorer, "kind": group, "n_corrupted": int(positive.sum()), "n_clean": int((~positive).sum()),
                "auroc": auroc(subset["score"].to_numpy(), positive),
                precision: float(np.mean([precision_at_count(s, p, count) for s, p in repeats])),
                best: float(np.mean([min(p.sum(), count) / min(p.size, count) for _, p in repeats])),
            })
    table = pd.DataFrame(rows, columns=["scorer", "kind", "n_corrupted", "n_clean", "auroc", precision, best])
    pooled = table[table["kind"] == "label"].set_index("scorer")["auroc"]
    order = {name: rank for rank, name in enumerate(pooled.sort_values(ascending=False, kind="stable").index)}
    return table.sort_values("scorer", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def structure_summary(structures: pd.DataFrame, count: int = TOP_STRUCTURES) -> pd.DataFrame:
    """Scorer rows (best pooled AUROC first), columns (kind, AUROC | P@count): the structure table ``auv audit`` leads with.

    Example:
        >>> rows = pd.DataFrame({"scorer": ["a", "a"], "kind": ["label", "dilate"], "auroc": [0.8, 0.8],
        ...                      "precision_top20": [0.1, 0.1]})
        >>> structure_summary(rows).columns.tolist()
        [('label', 'AUROC'), ('label', 'P@20'), ('dilate', 'AUROC'), ('dilate', 'P@20')]
    """
    renamed = structures.rename(columns={"auroc": "AUROC", f"precision_top{count}": f"P@{count}"})
    table = renamed.pivot_table(index="scorer", columns="kind", values=["AUROC", f"P@{count}"], sort=False)
    table = table.swaplevel(axis=1)
    kinds = list(structures["kind"].drop_duplicates())
    return table[[(kind, metric) for kind in kinds for metric in ("AUROC", f"P@{count}")]]


def structure_counts(structures: pd.DataFrame, count: int = TOP_STRUCTURES) -> list[str]:
    """One line per kind: how many corrupted and clean structures, and the best precision reachable at the top ``count``.

    The counts can differ between scorers (a structure a scorer gives no z is not ranked by it): then a range.

    Example:
        >>> rows = pd.DataFrame({"scorer": ["a", "b"], "kind": ["label", "label"], "n_corrupted": [2, 2],
        ...                      "n_clean": [8, 4], "best_top20": [0.2, 0.33]})
        >>> structure_counts(rows)
        ['label: 2 corrupted and 4-8 clean structures; a perfect score reaches P@20 = 0.20-0.33']
    """
    def spread(values: pd.Series, form: str) -> str:
        low, high = form.format(values.min()), form.format(values.max())
        return low if low == high else f"{low}-{high}"

    return [f"{kind}: {spread(part['n_corrupted'], '{}')} corrupted and {spread(part['n_clean'], '{}')} clean structures; "
            f"a perfect score reaches P@{count} = {spread(part[f'best_top{count}'], '{:.2f}')}"
            for kind, part in structures.groupby("kind", sort=False)]
