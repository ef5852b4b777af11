"""How each score follows a trained model's Dice (the paper's Table 4), and how S follows a structure's extent.

Per structure (a test case's class): each scorer's class value (``auv``: S)
against the Dice the model reached on it, and S against the number of slices
the class spans (over every structure of the cases). Per case: each scorer's case score (``auv``: the cohort AUV)
against the case's mean Dice over its classes. Pearson and Spearman
coefficients with their p-values; NaN where fewer than 3 pairs are finite or
either side is constant.

Example:
    >>> structures = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "class": ["liver"] * 4,
    ...                            "slices": [6, 5, 4, 3], "auv": [0.4, 0.3, 0.2, 0.1]})
    >>> cases = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "auv": [0.0, 0.2, 0.6, 1.0]})
    >>> dice = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "class": ["liver"] * 4, "dice": [0.9, 0.8, 0.5, 0.4]})
    >>> table = score_correlations(structures, cases, dice, ["auv"])
    >>> table[["level", "scorer", "against", "n", "spearman"]].values.tolist()
    [['class', 'auv', 'dice', 4, 1.0], ['class', 'auv', 'slices', 4, 1.0], ['case', 'auv', 'dice', 4, -1.0]]
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

COLUMNS = ["level", "scorer", "against", "n", "pearson", "pearson_p", "spearman", "spearman_p"]
MIN_PAIRS = 3


def correlation_row(level: str, scorer: str, against: str, x: pd.Series, y: pd.Series) -> dict[str, object]:
    """Pearson and Spearman of the finite pairs of ``x`` and ``y``."""
    from scipy.stats import ConstantInputWarning, pearsonr, spearmanr

    values = pd.DataFrame({"x": pd.to_numeric(x, errors="coerce"), "y": pd.to_numeric(y, errors="coerce")})
    values = values[np.isfinite(values["x"]) & np.isfinite(values["y"])]
    row: dict[str, object] = {"level": level, "scorer": scorer, "against": against, "n": len(values),
                              "pearson": math.nan, "pearson_p": math.nan, "spearman": math.nan, "spearman_p": math.nan}
    if len(values) < MIN_PAIRS or values["x"].nunique() < 2 or values["y"].nunique() < 2:
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        pearson, spearman = pearsonr(values["x"], values["y"]), spearmanr(values["x"], values["y"])
    row.update(pearson=float(pearson.statistic), pearson_p=float(pearson.pvalue),
               spearman=float(spearman.statistic), spearman_p=float(spearman.pvalue))
    return row


def score_correlations(structures: pd.DataFrame, cases: pd.DataFrame, dice: pd.DataFrame, scorers: Sequence[str]) -> pd.DataFrame:
    """The correlation table.

    Args:
        structures: ``structures.csv`` rows (case_id, class, slices and a column per scorer).
        cases: ``results.csv`` rows (case_id and a case-score column per scorer).
        dice: the model's Dice per (case_id, class) on the same cases.
        scorers: the scorers to correlate (those missing from a table are skipped).
    """
    per_structure = structures.merge(dice, on=["case_id", "class"], how="inner")
    per_case = cases.merge(dice.groupby("case_id", as_index=False)["dice"].mean(), on="case_id", how="inner")
    rows = []
    for scorer in scorers:
        if scorer in per_structure.columns:
            rows.append(correlation_row("class", scorer, "dice", per_structure[scorer], per_structure["dice"]))
            if scorer == "auv":  # every structure of the cases, the classes the model was not trained on too
                rows.append(correlation_row("class", scorer, "slices", structures[scorer], structures["slices"]))
    rows.extend(correlation_row("case", scorer, "dice", per_case[scorer], per_case["dice"]) for scorer in scorers if scorer in per_case.columns)
    return pd.DataFrame(rows, columns=COLUMNS)
