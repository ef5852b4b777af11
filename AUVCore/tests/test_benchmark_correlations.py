"""The benchmark's correlation table (the paper's Table 4): scores against a model's Dice, S against a class's extent."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr

from auvcore.benchmark.correlations import score_correlations


def _tables():
    rng = np.random.default_rng(0)
    cases = [f"c{i}" for i in range(6)]
    structures = pd.DataFrame([{"case_id": c, "class": k, "slices": int(rng.integers(2, 9)), "auv": float(rng.uniform()),
                                "agreement": float(rng.uniform()), "variance": 0.5}
                               for c in cases for k in ("liver", "spleen", "kidney")])
    dice = structures[structures["class"] != "kidney"][["case_id", "class"]].assign(dice=rng.uniform(size=12))
    dice.loc[dice.index[0], "dice"] = math.nan  # neither prediction nor reference holds the class
    results = pd.DataFrame({"case_id": cases, "auv": rng.uniform(size=6), "agreement": rng.uniform(size=6), "variance": 1.0})
    return structures, results, dice


def test_each_coefficient_is_scipys_on_the_matched_finite_pairs():
    structures, results, dice = _tables()
    table = score_correlations(structures, results, dice, ["auv", "agreement", "variance", "cleanlab"]).set_index(["level", "scorer", "against"])
    matched = structures.merge(dice, on=["case_id", "class"]).dropna(subset=["dice"])
    row = table.loc[("class", "agreement", "dice")]
    assert row["n"] == 11
    assert row["pearson"] == pytest.approx(pearsonr(matched["agreement"], matched["dice"]).statistic)
    assert row["spearman"] == pytest.approx(spearmanr(matched["agreement"], matched["dice"]).statistic)
    slices = table.loc[("class", "auv", "slices")]  # over every structure, kidney too
    assert slices["n"] == 18 and slices["spearman"] == pytest.approx(spearmanr(structures["auv"], structures["slices"]).statistic)
    per_case = results.merge(dice.groupby("case_id", as_index=False)["dice"].mean(), on="case_id")
    assert table.loc[("case", "auv", "dice"), "pearson"] == pytest.approx(pearsonr(per_case["auv"], per_case["dice"]).statistic)


def test_a_constant_or_missing_scorer_gives_no_coefficient():
    structures, results, dice = _tables()
    table = score_correlations(structures, results, dice, ["variance", "cleanlab"])
    assert set(table["scorer"]) == {"variance"}  # cleanlab is in neither table
    assert table[["pearson", "spearman"]].isna().all().all()
    assert (table["n"] > 0).all()
