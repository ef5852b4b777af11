"""``auv benchmark-curation``: a one-seed smoke run on real slabs (the full benchmark is minutes to an hour)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auvcore.cli import main
from auvcore.errors import InputError
from auvcore.sample_data import build_slab_cohort


# No one_thread here: most of the smoke is scoring with the exported LiteMedSAM, which runs on
# torch's thread count (one thread doubles it, 247 s against 126 s on two cores).
@pytest.fixture(scope="module")
def benchmark(sample_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    slabs = build_slab_cohort(sample_cohort, tmp_path_factory.mktemp("slabs"), slices=6, stride=8, limit=2)
    out = tmp_path_factory.mktemp("benchmark")
    assert main(["benchmark-curation", str(slabs), "--out", str(out), "--seeds", "0", "--filters", "auv@paper,agreement,cleanlab",
                 "--epochs", "1", "--steps-per-epoch", "1", "--base-filters", "4", "--classes", "liver,spleen",
                 "--rate", "0.5", "--keep", "0.5", "--test-fraction", "0.34", "--duo-forms", "paper", "--oof-folds", "2", "--device", "cpu"]) == 0
    return out


def test_every_arm_is_reported_with_its_figures(benchmark: Path):
    summary = pd.read_csv(benchmark / "benchmark.csv")
    assert summary["arm"].tolist() == ["noisy", "oracle", "random", "filter:auv@paper", "filter:agreement", "filter:cleanlab", "duo:paper", "duo+filter"]
    assert list(summary.columns) == ["arm", "mean_dice", "sd_dice", "gain", "gain_ci_low", "gain_ci_high", "oracle_share",
                                     "excluded", "precision", "recall"]
    assert summary.loc[summary["arm"] == "noisy", "gain"].item() == 0.0
    assert summary["mean_dice"].between(0, 1).all()
    page = (benchmark / "benchmark.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "sensitivity unknown" in page  # one seed: no seed-to-seed sd


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


def test_a_filter_with_its_own_aggregate_excludes_by_it(benchmark: Path):
    """``auv@paper`` filters on the paper's AUV (min-max of -log S) while the other filters use the default aggregate."""
    from auvcore.curation import load_exclusions, quantile_threshold

    results = pd.read_csv(benchmark / "scores" / "results.csv")
    neg_log = -np.log(results["S"].to_numpy())
    paper_auv = (neg_log - neg_log.min()) / (neg_log.max() - neg_log.min())
    expected = set(results.loc[paper_auv > quantile_threshold(pd.Series(paper_auv), 0.5), "case_id"].astype(str))
    runs = pd.read_csv(benchmark / "benchmark_runs.csv")
    run = runs.loc[runs["arm"] == "filter:auv@paper", "run"].iloc[0]
    assert expected and load_exclusions(benchmark / "runs" / f"{run}.exclusions.json").excluded() == expected
    assert json.loads((benchmark / "settings.json").read_text())["aggregate"] == "calibrated"


def test_cleanlab_filters_on_out_of_fold_probabilities_of_the_training_cases(benchmark: Path):
    manifest = pd.read_csv(benchmark / "manifest.csv")
    folder = json.loads((benchmark / "oof" / "oof.json").read_text())
    assert sorted(folder["cases"]) == sorted(manifest["case_id"]) and folder["folds"] == 2
    scores = pd.read_csv(benchmark / "scores" / "results.csv")
    assert len(scores) == len(manifest) and scores["cleanlab"].between(0, 1).all()  # a case score for every training case
    runs = pd.read_csv(benchmark / "benchmark_runs.csv")
    run = runs.loc[runs["arm"] == "filter:cleanlab", "run"].iloc[0]  # shared with an arm excluding the same cases
    assert (benchmark / "runs" / run / "model.pt").exists()


def test_every_scorer_is_correlated_with_the_noisy_models_test_dice(benchmark: Path):
    correlations = pd.read_csv(benchmark / "correlations.csv")
    assert list(correlations.columns) == ["level", "scorer", "against", "n", "pearson", "pearson_p", "spearman", "spearman_p"]
    pairs = set(zip(correlations["level"], correlations["scorer"], correlations["against"]))
    for scorer in ("auv", "agreement", "label_check"):
        assert ("class", scorer, "dice") in pairs and ("case", scorer, "dice") in pairs
    assert ("class", "auv", "slices") in pairs and "cleanlab" not in set(correlations["scorer"])  # no OOF for test cases
    structures = correlations.set_index(["level", "scorer", "against"]).loc[("class", "auv", "dice")]
    assert structures["n"] >= 3 and -1 <= structures["spearman"] <= 1  # liver and spleen in each test slab
    assert "Scores against the noisy model" in (benchmark / "benchmark.html").read_text()


def test_a_stopped_arm_stops_the_benchmark_and_resumes_on_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A SIGTERM ends a training cleanly, with a checkpoint and a model.pt of the unfinished network; the benchmark
    must not evaluate it or go on (it once did: it took model.pt for a finished run)."""
    from auvcore.benchmark import curation
    from auvcore.benchmark.settings import BenchmarkSettings
    from auvcore.duo import checkpoint, trainer

    calls = []

    def stopped_training(config):  # what the trainer leaves when stopped in its first epoch
        calls.append(config.resume)
        Path(config.out).mkdir(parents=True, exist_ok=True)
        state = {"model": {}, "plan": {}, "epoch": 0, "step": 23}
        checkpoint.save_checkpoint(state, Path(config.out) / checkpoint.LATEST)
        checkpoint.save_checkpoint(state, Path(config.out) / checkpoint.MODEL)
        return 143

    monkeypatch.setattr(trainer, "train", stopped_training)
    run = tmp_path / "runs" / "noisy_s0"
    run.parent.mkdir()
    for attempt in range(2):
        with pytest.raises(InterruptedError, match="noisy"):
            curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], set(), None, 0, "noisy", BenchmarkSettings())
    assert calls == [False, True]  # the second command resumes the stopped run


def test_a_run_trained_for_other_settings_is_refused_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A rerun in the same --out with other exclusions (another aggregate, another keep) must not evaluate the old model."""
    from auvcore.benchmark import curation
    from auvcore.benchmark.settings import BenchmarkSettings
    from auvcore.duo import trainer

    monkeypatch.setattr(trainer, "train", lambda config: Path(config.out).mkdir(parents=True, exist_ok=True))
    run = tmp_path / "runs" / "filter_label_check_s0"
    run.parent.mkdir()
    with pytest.raises(InterruptedError):  # no model.pt: as if stopped; the arm's settings are now on record
        curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], {"a"}, None, 0, "filter:label_check", BenchmarkSettings())
    with pytest.raises(InputError, match="other benchmark settings"):
        curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], {"b"}, None, 0, "filter:label_check", BenchmarkSettings())
    with pytest.raises(InputError, match="other benchmark settings"):
        curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], {"a"}, None, 0, "filter:label_check", BenchmarkSettings(epochs=3))
    with pytest.raises(InterruptedError):  # the same arm again: resumed, not refused
        curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], {"a"}, None, 0, "filter:label_check", BenchmarkSettings())


def test_an_arm_is_reused_where_it_was_trained_alike_and_refused_where_its_labels_differ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Another --duo-form does not change the noisy arm, nor does a copied benchmark folder; another planting does."""
    import shutil

    from auvcore.benchmark import curation
    from auvcore.benchmark.settings import BenchmarkSettings
    from auvcore.duo import trainer

    monkeypatch.setattr(trainer, "train", lambda config: Path(config.out).mkdir(parents=True, exist_ok=True))

    def train_noisy(out: Path, settings: BenchmarkSettings) -> None:
        run = out / "runs" / "noisy_s0"
        run.parent.mkdir(parents=True, exist_ok=True)
        with pytest.raises(InterruptedError):  # reused (or resumed): the stub leaves no model
            curation._train_and_evaluate(run, out / "manifest.csv", [], set(), None, 0, "noisy", settings)

    train_noisy(tmp_path / "a", BenchmarkSettings(duo_form="detached"))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    train_noisy(tmp_path / "b", BenchmarkSettings(duo_form="paper", duo_warmup=0.4))
    for other_planting in (BenchmarkSettings(rate=0.6), BenchmarkSettings(kinds=("swap",)), BenchmarkSettings(plant_seed=1)):
        with pytest.raises(InputError, match="other benchmark settings"):
            train_noisy(tmp_path / "b", other_planting)


def test_the_duo_warm_up_reaches_the_duo_arms_alone_and_older_arms_still_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import json

    from auvcore.benchmark import curation
    from auvcore.benchmark.settings import BenchmarkSettings
    from auvcore.duo import trainer

    settings = BenchmarkSettings(duo_warmup=0.4)
    assert curation._training_config(tmp_path, tmp_path, settings, 0, "paper").duo_warmup == 0.4
    assert curation._training_config(tmp_path, tmp_path, settings, 0, None).duo_warmup == 0.0
    monkeypatch.setattr(trainer, "train", lambda config: Path(config.out).mkdir(parents=True, exist_ok=True))
    run = tmp_path / "runs" / "noisy_s0"
    run.parent.mkdir()
    with pytest.raises(InterruptedError):
        curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], set(), None, 0, "noisy", settings)
    marker = run.parent / "noisy_s0.arm.json"
    older = json.loads(marker.read_text())
    del older["duo_warmup"]  # as written before the setting existed
    marker.write_text(json.dumps(older))
    with pytest.raises(InterruptedError):  # resumed, not refused
        curation._train_and_evaluate(run, tmp_path / "manifest.csv", [], set(), None, 0, "noisy", settings)


def test_the_random_arm_is_not_the_planted_draw():
    """The planting draws with default_rng([plant_seed, repeat]); the random arm must not repeat that draw."""
    from auvcore.benchmark.curation import arm_exclusions
    from auvcore.benchmark.settings import BenchmarkSettings

    ids = [f"case{i}" for i in range(10)]
    planted = {ids[i] for i in np.random.default_rng([0, 0]).choice(10, size=5, replace=False)}  # as plant_repeat draws
    settings = BenchmarkSettings(keep=0.5, filters=())
    for seed in range(3):
        assert arm_exclusions(pd.DataFrame({"case_id": ids}), planted, settings, seed)["random"] != planted


@pytest.mark.parametrize(("oracle_gain", "noisy_sd", "oracle_sd", "verdict"),
                         [(0.05, 0.01, 0.02, "sensitive"), (0.05, 0.03, 0.01, "NOT sensitive"), (-0.02, 0.001, 0.001, "NOT sensitive")])
def test_the_benchmark_is_sensitive_only_when_the_oracle_gains_more_than_twice_either_arms_sd(oracle_gain, noisy_sd, oracle_sd, verdict):
    from auvcore.benchmark.curation import sensitivity

    summary = pd.DataFrame({"arm": ["noisy", "oracle", "random"], "gain": [0.0, oracle_gain, 0.01],
                            "sd_dice": [noisy_sd, oracle_sd, 0.5]})  # the random arm's sd does not count
    assert sensitivity(summary).split(":")[0] == verdict


def test_the_duo_arm_is_the_duo_form_unless_forms_are_asked_for():
    """Every form trains five more models a seed; by default only the form that duo+filter uses is an arm."""
    import argparse

    from auvcore.benchmark.settings import BenchmarkSettings
    from auvcore.commands.benchmark import register
    from auvcore.duo.config import DUO_FORMS, TrainConfig

    assert BenchmarkSettings().duo_forms == (TrainConfig.duo_form,)
    assert BenchmarkSettings(duo_form="boundary").duo_forms == ("boundary",)
    parser = argparse.ArgumentParser().add_subparsers()
    register(parser)
    parse = parser.choices["benchmark-curation"].parse_args
    assert parse(["data", "--out", "o", "--duo-forms", "all"]).duo_forms == DUO_FORMS
    assert parse(["data", "--out", "o", "--duo-forms", "none"]).duo_forms == ()
    assert parse(["data", "--out", "o"]).duo_forms is None
    assert parse(["data", "--out", "o", "--duo-warmup", "0.4"]).duo_warmup == 0.4
    with pytest.raises(SystemExit):
        parse(["data", "--out", "o", "--duo-warmup", "1"])
