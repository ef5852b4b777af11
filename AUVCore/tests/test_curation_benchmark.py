"""``auv benchmark-curation``: a one-seed smoke run on real slabs (the full benchmark is minutes to an hour)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auvcore.cli import main
from auvcore.sample_data import build_slab_cohort

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def benchmark(sample_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    slabs = build_slab_cohort(sample_cohort, tmp_path_factory.mktemp("slabs"), slices=6, stride=8, limit=2)
    out = tmp_path_factory.mktemp("benchmark")
    assert main(["benchmark-curation", str(slabs), "--out", str(out), "--seeds", "0", "--filters", "auv,agreement",
                 "--epochs", "1", "--steps-per-epoch", "1", "--base-filters", "4", "--classes", "liver,spleen",
                 "--rate", "0.5", "--test-fraction", "0.34", "--duo-forms", "paper", "--device", "cpu"]) == 0
    return out


def test_every_arm_is_reported_with_its_figures(benchmark: Path):
    summary = pd.read_csv(benchmark / "benchmark.csv")
    assert summary["arm"].tolist() == ["noisy", "oracle", "random", "filter:auv", "filter:agreement", "duo:paper", "duo+filter"]
    assert list(summary.columns) == ["arm", "mean_dice", "sd_dice", "gain", "gain_ci_low", "gain_ci_high", "oracle_share",
                                     "excluded", "precision", "recall"]
    assert summary.loc[summary["arm"] == "noisy", "gain"].item() == 0.0
    assert summary["mean_dice"].between(0, 1).all()
    assert (benchmark / "benchmark.html").read_text().startswith("<!DOCTYPE html>")


def test_the_oracle_removes_exactly_the_planted_cases(benchmark: Path):
    planted = pd.read_csv(benchmark / "planted.csv")
    summary = pd.read_csv(benchmark / "benchmark.csv").set_index("arm")
    assert len(planted) >= 1 and summary.loc["oracle", "excluded"] == len(planted)
    assert summary.loc["oracle", ["precision", "recall"]].tolist() == [1.0, 1.0]
    assert summary.loc["noisy", "excluded"] == 0 and summary.loc["duo:paper", "excluded"] == 0
    runs = pd.read_csv(benchmark / "benchmark_runs.csv")
    assert set(runs["class"]) <= {"liver", "spleen"} and set(runs["seed"]) == {0}
    # Every corruption hit a trained class, so filtering it can change the trained model.
    assert set(" ".join(planted["classes"]).split()) & {"liver", "spleen"}
    assert all(set(c.split()) & {"liver", "spleen"} for c in planted["classes"])
