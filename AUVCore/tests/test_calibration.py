"""Calibrated case scores: tail probabilities per structure, combined with the number of structures in mind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auvcore.calibration import TAIL_QUANTILE, combine, tail_probability
from auvcore.scales import ScoreScale


def test_tail_probability_is_empirical_in_the_body_and_a_joined_normal_tail_above():
    reference = np.linspace(-2.0, 2.0, 21)  # a cohort's z of one class
    join = np.quantile(reference, TAIL_QUANTILE)
    p = tail_probability(np.array([-5.0, 0.0, join, join + 1e-9, 2.0, 4.0, np.nan]), reference)
    assert p[0] == 1.0 and p[1] == pytest.approx(12 / 22)  # (1 + #{z' >= 0}) / (n + 1)
    assert p[3] == pytest.approx(p[2], rel=1e-6)  # continuous where the tail joins
    assert p[4] < 2 / 22  # the cohort's own extreme is not held at the empirical floor
    assert 0 < p[5] < p[4] and np.isnan(p[6])
    with pytest.raises(ValueError, match="no cohort value"):
        tail_probability(np.array([1.0]), np.array([np.nan]))


def test_sidak_accounts_for_the_number_of_structures_and_fisher_for_their_sum():
    one, forty = [np.array([0.01])], [np.array([0.01] + [0.5] * 39)]
    assert combine(one, "calibrated")[0] == pytest.approx(0.01)
    assert combine(forty, "calibrated")[0] == pytest.approx(1 - 0.99**40)  # the same worst structure means less
    two_moderate, one_moderate = [np.array([0.05, 0.05])], [np.array([0.05, 0.9])]
    assert combine(two_moderate, "fisher")[0] < combine(one_moderate, "fisher")[0]
    assert np.isnan(combine([np.array([np.nan])], "fisher")[0])


@pytest.fixture
def cohort() -> pd.DataFrame:
    """30 cases: 10 hold 40 structures, 20 hold 2; all clean (seeded normal noise) but case 'bad', whose liver is off."""
    rng = np.random.default_rng(3)
    classes = [f"c{i}" for i in range(40)]
    rows = {}
    for index in range(30):
        held = classes if index < 10 else classes[:2]
        rows[f"case{index}"] = {name: rng.normal() for name in held}
    rows["bad"] = {"c0": 3.5, "c1": 0.0}
    return pd.DataFrame.from_dict(rows, orient="index")


@pytest.mark.parametrize("aggregate", ["calibrated", "fisher"])
def test_the_bad_structure_wins_and_the_scale_places_new_cases_alike(cohort: pd.DataFrame, aggregate: str):
    scale = ScoreScale.fit(cohort, aggregate)
    scores = pd.Series(scale.place(cohort), index=cohort.index)
    assert scores.idxmax() == "bad" and scores.between(0, 1).all()
    saved = ScoreScale.from_dict(scale.to_dict())
    assert saved.place(cohort.loc[["bad"]])[0] == pytest.approx(scores["bad"])


def test_the_maximum_z_flags_a_many_structure_case_that_calibration_does_not(cohort: pd.DataFrame):
    """The failure the calibrated scores address: with 40 chances, a clean case's largest z is large."""
    calibrated = pd.Series(ScoreScale.fit(cohort, "calibrated").place(cohort), index=cohort.index)
    largest = pd.Series(ScoreScale.fit(cohort, "max").place(cohort), index=cohort.index)
    many = cohort.index[:10]
    assert largest[many].mean() > largest.drop(many).drop("bad").mean()
    assert calibrated[many].mean() < largest[many].mean()
