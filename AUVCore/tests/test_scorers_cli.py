"""``auv score --scorers ... --aggregate ...`` on the real small cohort with the real LiteMedSAM."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auvcore.cli import main
from auvcore.scorers import CROSS_CASE, parse_scorers

#: The scorers beside auv that --scorers all computes (cleanlab needs --oof: tests/test_cleanlab.py).
EXTRA = [name for name in parse_scorers("all") if name != "auv"]


def test_every_scorer_is_a_results_column_in_the_unit_interval(scored_all: Path):
    table = pd.read_csv(scored_all / "results.csv")
    assert list(table.columns[:3]) == ["case_id", "auv", "S"]
    assert EXTRA == [c for c in table.columns if c in EXTRA]  # one column each, in the registry's order
    for name in EXTRA:
        values = table[name].dropna()
        assert len(values) == 3, name  # liver and spleen are in all three cases, so even the cohort scorers score each
        assert values.between(0, 1).all() and values.min() == 0.0, name
        # min-max over the cohort: 1 for the highest case, unless every case has the same value (no stray voxels
        # in these clean labels), which leaves nothing to tell apart
        assert values.max() == 1.0 or values.nunique() == 1, name


def test_case_json_holds_class_and_slice_values_and_the_prototypes_lie_beside_it(scored_all: Path):
    record = json.loads((scored_all / "cases" / "ct_full.json").read_text())
    cohort_stage = ("identity", "label_check")  # made at the cohort stage, from the prototypes and the other scorers
    assert record["settings"]["scorers"] == ["auv", *(n for n in EXTRA if n not in cohort_stage)]
    agreement = record["scores"]["agreement"]
    assert set(agreement["classes"]) == {"liver", "spleen", "kidney_right", "stomach"}
    assert all(0 <= v <= 1 for v in agreement["classes"].values())
    liver_slices = agreement["slices"]["liver"]
    assert len(liver_slices) == 6 and all(v is None or 0 <= v <= 1 for v in liver_slices)
    centres = np.array(record["slice_centres_lps"])
    assert centres.shape == (6, 3) and np.allclose(np.abs(np.diff(centres[:, 2])), 3.0)  # one per slice, 3 mm apart
    assert set(record["scores"]["image_auv"]["classes"]) == {"image"}
    # Three cases hold liver and spleen; kidney_right and stomach are only in the two CT labelings.
    assert set(record["scores"]["prototype"]["classes"]) == {"liver", "spleen"}
    with np.load(scored_all / "cases" / "ct_full.prototypes.npz") as saved:
        assert saved["vectors"].shape == (4, 256)
    assert set(record["case_scores"]) == set(EXTRA)
    assert record["timings"]["scorers"] < record["timings"]["decoder"]  # no second model pass


def test_aggregation_is_a_cohort_stage_and_the_paper_sum_warns_for_different_class_sets(scored_all: Path, small_cohort: Path, tmp_path: Path, capsys):
    out = tmp_path / "again"
    shutil.copytree(scored_all, out)
    arguments = ["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress", "--scorers", "all"]
    assert main(arguments) == 0
    assert capsys.readouterr().out.count("warning: the cases hold different class sets (2 to 4 classes)") == 1
    assert main([*arguments, "--aggregate", "max"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err + captured.out  # per-class normalisation does not follow the class count
    assert captured.out.count("status=cached") == 3  # nothing rescored: aggregation is not in the cache key
    table = pd.read_csv(out / "results.csv")
    paper = pd.read_csv(scored_all / "results.csv")
    assert not np.allclose(table["auv"], paper["auv"])
    reference = json.loads((out / "reference.json").read_text())
    assert reference["aggregate"] == "max" and set(reference["scales"]) == {"auv", *EXTRA} - CROSS_CASE


def test_a_case_placed_on_a_saved_cohort_gets_every_scale_but_the_cohort_scorers(scored_all: Path, small_cohort: Path, tmp_path: Path):
    out = tmp_path / "placed"
    shutil.copytree(scored_all / "cases", out / "cases")
    assert main(["score", str(small_cohort / "ct.nii.gz"), "--label", str(small_cohort / "ct_fast.nii.gz"),
                 "--label-names", str(small_cohort / "labels.json"), "--case-id", "ct_fast", "--out", str(out),
                 "--device", "cpu", "--no-progress", "--scorers", "all", "--runtime", "torch",  # the cohort's runtime: cached
                 "--reference", str(scored_all)]) == 0
    placed = pd.read_csv(out / "results.csv").iloc[0]
    cohort = pd.read_csv(scored_all / "results.csv").set_index("case_id").loc["ct_fast"]
    for name in ["auv", *EXTRA]:
        if name in CROSS_CASE:
            assert np.isnan(placed[name])
        else:
            assert placed[name] == pytest.approx(cohort[name]), name


def test_label_aware_scorers_need_classwise_mode(small_cohort: Path, tmp_path: Path, capsys):
    assert main(["score", str(small_cohort / "ct.nii.gz"), "--mode", "image", "--out", str(tmp_path), "--scorers", "agreement"]) == 2
    assert "need --mode classwise" in capsys.readouterr().err
