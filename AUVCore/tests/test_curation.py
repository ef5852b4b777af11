"""Curation: the paper's quantile, manual decisions, safe writes, nnU-Net splits and the CLI."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from auvcore.results import CASES_DIR, RESULTS_CSV, CaseRecord, results_table, safe_file_name
from auvcore.cli import main
from auvcore.commands import curate
from auvcore.curation import (
    ConcurrentChangeError,
    ExclusionList,
    MISSING_FILE,
    load_exclusions,
    quantile_threshold,
    retained_cases,
    save_exclusions,
    updating_exclusions,
    write_manifest,
)
from auvcore.errors import InputError
from auvcore.sample_data import fetch_sample_cohort

SAMPLE_COHORT = Path(__file__).resolve().parents[2] / "Testing" / "data" / "sample_cohort"


# ---------------------------------------------------------------- a results folder per the `auv score` contract

#: (case_id, sample manifest row it reuses, AUV, status). Two cases tie at 0.62; "unreadable" failed.
COHORT = (
    ("ct_full_model", "ct_full_model", 0.00, "ok"),
    ("mr", "mr", 0.18, "ok"),
    ("ct_roi_subset", "ct_roi_subset", 0.40, "ok"),
    ("ct_full_model_rescan", "ct_full_model", 0.62, "ok"),
    ("mr/repeat 2", "mr", 0.62, "ok"),
    ("ct_fast_model", "ct_fast_model", 1.00, "ok"),
    ("unreadable", "ct_fast_model", math.nan, "error"),
)


def _class_names(label_names_file: Path) -> dict[int, str]:
    return {v: k for k, v in json.loads(label_names_file.read_text())["labels"].items() if v != 0}


def make_results_folder(folder: Path, cohort=COHORT) -> Path:
    """results.csv + cases/<id>.json as `auv score` writes them, on the real sample volumes.

    The table comes from the scorer's own :func:`auvcore.results.results_table`.

    Per-class S values are made up (seeded) but the classes are the ones
    really present in each label map; in label maps with more than two classes
    the first has no S (as when too few slices hold it).
    """
    manifest = pd.read_csv(fetch_sample_cohort(SAMPLE_COHORT)).set_index("case_id")
    (folder / CASES_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    records = []
    for case_id, source, auv, status in cohort:
        entry = manifest.loc[source]
        image, label = SAMPLE_COHORT / entry["image"], SAMPLE_COHORT / entry["label"]
        names = _class_names(SAMPLE_COHORT / entry["label_names"])
        present = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(label))))
        classes = []
        class_ids = [int(c) for c in present if c != 0]
        for position, class_id in enumerate(class_ids):
            s = None if position == 0 and len(class_ids) > 2 else float(rng.uniform(0.2, 0.95))
            classes.append({"id": class_id, "name": names[class_id], "S": s, "U": None if s is None else 1.0 - s,
                            "rows": 1 if s is None else 12, "missing_reason": "fewer than 2 slices hold the class" if s is None else None})
        ok = status == "ok"
        defined = [c["S"] for c in classes if c["S"] is not None]
        total = sum(defined) if ok and defined else None
        record = {"case_id": case_id, "image": str(image), "label": str(label),
                  "label_names": str(SAMPLE_COHORT / entry["label_names"]), "status": status,
                  "error": None if ok else f"{label}: cannot be read (truncated file)",
                  "auv": None if not ok else auv, "S": total, "classes": classes if ok else [],
                  "backbone": "litemedsam", "mode": "classwise", "settings": {}, "versions": {}, "timings": {},
                  "geometry": {}, "cache_key": f"key-{case_id}"}
        (folder / CASES_DIR / f"{safe_file_name(case_id)}.json").write_text(json.dumps(record))
        records.append(CaseRecord.from_dict(record))
    results_table(records).to_csv(folder / RESULTS_CSV, index=False)
    return folder


@pytest.fixture
def results_folder(tmp_path: Path) -> Path:
    return make_results_folder(tmp_path / "results")


def _table(auv, status=None) -> pd.DataFrame:
    ids = [f"case{i:02d}" for i in range(len(auv))]
    return pd.DataFrame({"case_id": ids, "auv": auv, "status": status or ["ok"] * len(auv)})


# ---------------------------------------------------------------- the quantile F^-1(p)

def _reference_quantile(values: list[float], keep: Fraction) -> float:
    """The definition, in exact arithmetic: the smallest x in the sample with #(v <= x) / n >= p."""
    return min(x for x in values if Fraction(sum(v <= x for v in values), len(values)) >= keep)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0]) | st.floats(0, 1), min_size=1, max_size=40),
       st.integers(1, 40), st.integers(1, 40))
def test_quantile_is_the_papers_inverse_cdf(values, numerator, denominator):
    keep = Fraction(min(numerator, denominator), denominator)
    assert quantile_threshold(values, float(keep)) == _reference_quantile(values, keep)


def test_quantile_keeps_exactly_p_n_at_exact_fractions():
    """0.7 * 10 is 7.000000000000001 in floating point; the rule must still keep 7 cases, not 8."""
    values = np.arange(10) / 10
    for keep, kept in ((0.7, 7), (0.9, 9), (0.95, 10), (0.1, 1), (1.0, 10), (0.05, 1)):
        assert int(np.sum(values <= quantile_threshold(values, keep))) == kept, keep


def test_quantile_keeps_every_tied_case():
    values = [0.1, 0.5, 0.5, 0.5, 0.9]
    assert quantile_threshold(values, 0.5) == 0.5  # F(0.1) = 0.2 < 0.5 <= F(0.5) = 0.8: keeps 4 of 5
    assert quantile_threshold([0.3] * 6, 0.5) == 0.3  # all equal: every case kept


def test_quantile_of_tiny_cohorts():
    assert quantile_threshold([0.4], 0.95) == 0.4
    assert quantile_threshold([0.4], 0.01) == 0.4
    assert quantile_threshold([0.9, 0.2], 0.95) == 0.9  # F(0.2) = 0.5 < 0.95
    assert quantile_threshold([0.9, 0.2], 0.5) == 0.2


def test_quantile_ignores_nan_and_rejects_bad_input():
    assert quantile_threshold([math.nan, 0.2, 0.9, math.nan], 0.5) == 0.2
    with pytest.raises(ValueError, match="no scored case"):
        quantile_threshold([math.nan], 0.9)
    for keep in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
            quantile_threshold([0.1, 0.2], keep)


# ---------------------------------------------------------------- decisions

def test_apply_quantile_excludes_above_threshold_and_skips_failed_cases():
    results = _table([0.0, 0.3, 0.6, 0.6, 1.0, math.nan], ["ok"] * 5 + ["error"])
    decisions = ExclusionList()
    decisions.apply_quantile(results, keep=0.6)
    assert decisions.rule.threshold == 0.6 and decisions.rule.n_scored == 5
    assert decisions.excluded() == {"case04"}
    assert retained_cases(results, decisions) == ["case00", "case01", "case02", "case03"]
    only = decisions.quantile["case04"]
    assert (only.action, only.reason, only.auv) == ("exclude", "auv-quantile", 1.0)
    assert only.tool_version and only.time.endswith("+00:00")


def test_failed_case_is_retained_only_when_included_by_hand():
    results = _table([0.1, math.nan], ["ok", "error"])
    decisions = ExclusionList()
    decisions.apply_quantile(results, keep=0.9)
    assert retained_cases(results, decisions) == ["case00"]
    decisions.include("case01", note="scored fine with the other backbone")
    assert retained_cases(results, decisions) == ["case00", "case01"]


def test_no_scored_case_means_no_threshold_and_no_exclusion():
    results = _table([math.nan, math.nan], ["error", "error"])
    decisions = ExclusionList()
    decisions.apply_quantile(results, keep=0.9)
    assert decisions.rule.threshold is None and decisions.excluded() == set()
    assert retained_cases(results, decisions) == []
    with pytest.raises(ValueError, match="keep must be"):
        decisions.apply_quantile(results, keep=0.0)


def test_manual_decisions_win_and_survive_refiltering():
    results = _table([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    decisions = ExclusionList()
    decisions.apply_quantile(results, keep=0.5)
    assert decisions.excluded() == {"case03", "case04", "case05"}
    decisions.include("case05", note="reviewed: label is fine")
    decisions.exclude("case00", auv=0.0, note="wrong patient")
    decisions.exclude("case01", auv=0.2, note="motion")
    decisions.include("case01", note="second look: fine")  # latest manual decision wins
    for keep in (0.9, 0.3, 1.0, 0.5):
        decisions.apply_quantile(results, keep=keep)
        assert "case00" in decisions.excluded() and "case05" not in decisions.excluded()
        assert "case01" not in decisions.excluded()
    assert decisions.excluded() == {"case00", "case03", "case04"}
    assert [d.case_id for d in decisions.manual] == ["case05", "case00", "case01", "case01"]
    assert decisions.manual[0].auv == 1.0  # an inclusion records the AUV the case had


def test_refiltering_is_idempotent_and_notes_the_rule_in_force():
    results = _table([0.0, 0.5, 0.8, 1.0])
    decisions = ExclusionList()
    decisions.apply_quantile(results, keep=0.75)
    before = dict(decisions.quantile)
    decisions.apply_quantile(results, keep=0.75)
    assert decisions.quantile == before
    assert before["case03"].note == "AUV 1 > F^-1(0.75) = 0.8"
    decisions.apply_quantile(results, keep=0.5)
    assert decisions.quantile["case03"].note == "AUV 1 > F^-1(0.5) = 0.5"


# ---------------------------------------------------------------- the file

def test_round_trip_and_format(tmp_path):
    path = tmp_path / "exclusions.json"
    decisions = ExclusionList()
    decisions.apply_quantile(_table([0.1, 0.9]), keep=0.5)
    decisions.exclude("case00", auv=0.1, note="ghosting")
    save_exclusions(path, decisions)
    document = json.loads(path.read_text())
    assert document["format"] == "auv-exclusions" and document["version"] == 1
    assert {d["reason"] for d in document["decisions"]} == {"auv-quantile", "manual"}
    assert set(document["decisions"][0]) == {"case_id", "action", "reason", "auv", "note", "time", "tool_version"}
    again = load_exclusions(path)
    assert again.effective() == decisions.effective() and again.rule == decisions.rule
    assert load_exclusions(tmp_path / "absent.json").effective() == {}


@pytest.mark.parametrize("content, problem", [
    (b'{"format": "auv-exclusions", "version": 1, "decisions": [', "is not valid JSON"),
    (b"\xff\xfe garbage", "is not valid JSON"),
    (b'[{"train": ["a"], "val": ["b"]}]', "is not an AUV exclusion list"),
    (b'{"labels": {"background": 0}}', "is not an AUV exclusion list"),
    (b'{"format": "auv-exclusions", "version": 99, "decisions": []}', "version 99"),
    (b'{"format": "auv-exclusions", "version": 1, "decisions": [{"case_id": "a"}]}', "lacks action"),
])
def test_corrupt_or_foreign_file_is_an_error_and_left_untouched(tmp_path, content, problem):
    path = tmp_path / "exclusions.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as error:
        load_exclusions(path)
    assert str(path) in str(error.value)
    with pytest.raises(InputError):
        with updating_exclusions(path) as decisions:
            decisions.exclude("a", auv=0.5)
    assert path.read_bytes() == content


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "exclusions.json"
    decisions = ExclusionList()
    decisions.exclude("a", auv=0.5, note="first")
    save_exclusions(path, decisions)
    before = path.read_bytes()

    def power_cut(*_):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", power_cut)
    decisions.exclude("b", auv=0.7)
    with pytest.raises(OSError, match="simulated crash"):
        save_exclusions(path, decisions)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["exclusions.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_manifest(["a"], tmp_path / "m.csv")
        assert (tmp_path / "m.csv").stat().st_mode & 0o777 == 0o644
        (tmp_path / "m.csv").chmod(0o640)
        write_manifest(["b"], tmp_path / "m.csv")  # an existing file keeps its permissions
        assert (tmp_path / "m.csv").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_stale_copy_cannot_overwrite_newer_decisions(tmp_path):
    path = tmp_path / "exclusions.json"
    save_exclusions(path, ExclusionList(), expected_previous=MISSING_FILE)
    first, second = load_exclusions(path), load_exclusions(path)
    first.exclude("a", auv=0.9, note="curator 1")
    save_exclusions(path, first, expected_previous=first.loaded_digest)
    second.exclude("b", auv=0.8, note="curator 2")
    with pytest.raises(ConcurrentChangeError, match="changed on disk"):
        save_exclusions(path, second, expected_previous=second.loaded_digest)
    assert load_exclusions(path).excluded() == {"a"}


#: The other writer: once both are ready, 40 read-change-save cycles, each adding one exclusion.
WRITER = """
import sys, time
from pathlib import Path
from auvcore.curation import updating_exclusions
path, ready, go = sys.argv[1:4]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
for i in range(40):
    with updating_exclusions(path) as decisions:
        decisions.exclude(f"q{i}", auv=0.5, note="other process")
"""


def test_concurrent_writers_lose_nothing(tmp_path):
    path, ready, go = tmp_path / "exclusions.json", tmp_path / "ready", tmp_path / "go"
    other = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ready), str(go)])
    deadline = time.monotonic() + 120
    while not ready.exists() and other.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for i in range(40):  # this process writes at the same time
        with updating_exclusions(path) as decisions:
            decisions.exclude(f"p{i}", auv=0.5, note="this process")
    assert other.wait(timeout=120) == 0
    assert load_exclusions(path).excluded() == {f"{p}{i}" for p in "pq" for i in range(40)}


# ---------------------------------------------------------------- the commands

def _auv(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="auv")
    curate.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("given", ["folder", "its results.csv"])
def test_filter_exclude_include_cycle(results_folder, capsys, given):
    folder = str(results_folder if given == "folder" else results_folder / "results.csv")
    assert _auv("filter", folder, "--keep", "0.8") == 0
    out = capsys.readouterr().out
    # 6 scored AUVs 0, .18, .40, .62, .62, 1: F^-1(0.8) = 0.62 (F = 5/6); only ct_fast_model goes.
    assert "threshold F^-1(p) = 0.6200 over 6 scored case(s)" in out
    assert "neither kept nor excluded by the quantile: unreadable" in out
    assert load_exclusions(results_folder / "exclusions.json").excluded() == {"ct_fast_model"}
    manifest = pd.read_csv(results_folder / "retained_manifest.csv")
    assert manifest["case_id"].tolist() == ["ct_full_model", "mr", "ct_roi_subset", "ct_full_model_rescan", "mr/repeat 2"]
    splits = json.loads((results_folder / "splits_final.json").read_text())
    # Three of the CT cases are labelings of one scan and the two MR cases of another: two groups, two folds.
    assert len(splits) == 2 and sorted(v for s in splits for v in s["val"]) == sorted(manifest["case_id"])

    assert _auv("exclude", "mr", "--results", folder, "--reason", "wrong sequence") == 0
    assert _auv("include", "ct_fast_model", "--results", folder, "--reason", "reviewed") == 0
    assert _auv("filter", folder) == 0  # re-run: the stored keep (0.8), manual decisions kept
    decisions = load_exclusions(results_folder / "exclusions.json")
    assert decisions.rule.keep == 0.8
    assert decisions.excluded() == {"mr"}
    manual = {d.case_id: d for d in decisions.manual}
    assert (manual["mr"].note, manual["mr"].auv) == ("wrong sequence", 0.18)
    retained = pd.read_csv(results_folder / "retained_manifest.csv")["case_id"].tolist()
    assert retained == ["ct_full_model", "ct_roi_subset", "ct_full_model_rescan", "mr/repeat 2", "ct_fast_model"]


def test_filter_by_another_scorer_and_the_rerun_keeps_it(results_folder, capsys):
    table = pd.read_csv(results_folder / "results.csv")
    # agreement ranks the cases the other way round from the AUV: the lowest-AUV case is the one to drop.
    table.insert(3, "agreement", 1.0 - table["auv"])
    table.to_csv(results_folder / "results.csv", index=False)
    assert _auv("filter", str(results_folder), "--keep", "0.8", "--by", "agreement") == 0
    assert "keep p=0.8 (given with --keep), by agreement (given with --by)" in capsys.readouterr().out
    decisions = load_exclusions(results_folder / "exclusions.json")
    assert decisions.excluded() == {"ct_full_model"} and decisions.rule.by == "agreement"
    (excluded,) = decisions.quantile.values()
    assert excluded.auv == 0.0 and excluded.note.startswith("agreement 1 > F^-1(0.8)")
    assert _auv("filter", str(results_folder)) == 0  # re-run: the stored keep and column, and it says so
    assert load_exclusions(results_folder / "exclusions.json").excluded() == {"ct_full_model"}
    stored = f"the last filter's, from {results_folder / 'exclusions.json'}"
    assert f"keep p=0.8 ({stored}; --keep to change it), by agreement ({stored}; --by to change it)" in capsys.readouterr().out
    assert main(["filter", str(results_folder), "--by", "S_liver"]) == 2
    assert "has no score column 'S_liver' for --by; its score columns: auv, agreement" in capsys.readouterr().err


def test_report_takes_the_results_csv_and_a_wrong_path_is_named(results_folder, tmp_path, capsys):
    assert _auv("report", str(results_folder / "results.csv"), "--out", str(tmp_path / "report.html")) == 0
    assert (tmp_path / "report.html").stat().st_size > 0
    (tmp_path / "notes.txt").write_text("not results")
    assert main(["filter", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt: is not a results folder nor its results.csv" in capsys.readouterr().err


def test_filter_to_another_folder_carries_manual_decisions(results_folder, tmp_path):
    _auv("exclude", "ct_roi_subset", "--results", str(results_folder), "--reason", "cropped")
    out = tmp_path / "curated"
    assert _auv("filter", str(results_folder), "--keep", "0.5", "--out", str(out)) == 0
    assert load_exclusions(out / "exclusions.json").excluded() == {"ct_roi_subset", "ct_full_model_rescan", "mr/repeat 2", "ct_fast_model"}
    assert {p.name for p in out.iterdir() if not p.name.endswith(".lock")} == {"exclusions.json", "retained_manifest.csv", "splits_final.json"}
    # 2 retained cases (ct_full_model, mr): still a valid 2-fold split.
    assert len(json.loads((out / "splits_final.json").read_text())) == 2


def test_exclude_unknown_case_is_an_error(results_folder):
    with pytest.raises(InputError, match="has no case 'typo'"):
        _auv("exclude", "typo", "--results", str(results_folder), "--reason", "x")
    assert not (results_folder / "exclusions.json").exists()


def test_keep_out_of_range_is_rejected(results_folder, capsys):
    with pytest.raises(SystemExit):
        _auv("filter", str(results_folder), "--keep", "1.5")
    assert "--keep must be in (0, 1]" in capsys.readouterr().err


def test_cases_that_share_an_image_stay_in_one_fold_and_the_export_says_so(results_folder, capsys):
    assert _auv("filter", str(results_folder), "--keep", "1.0") == 0
    out = capsys.readouterr().out
    splits = json.loads((results_folder / "splits_final.json").read_text())
    same_ct = {"ct_full_model", "ct_fast_model", "ct_roi_subset", "ct_full_model_rescan"}  # one CT, four labelings
    for fold in splits:
        assert same_ct <= set(fold["train"]) or same_ct <= set(fold["val"]), fold
    assert "ct_fast_model, ct_full_model, ct_full_model_rescan, ct_roi_subset share one image (same content hash): kept in one fold" in out
    # Fewer groups than folds: nnU-Net's missing folds are named, not left to chance.
    assert len(splits) == 2 and "holds folds 0-1 only" in out and "--folds 2" in out


def test_the_retained_manifest_keeps_label_names_and_warns_of_mixed_label_tables(results_folder, capsys):
    assert _auv("filter", str(results_folder), "--keep", "1.0") == 0
    out = capsys.readouterr().out
    manifest = pd.read_csv(results_folder / "retained_manifest.csv").set_index("case_id")
    assert manifest.loc["ct_full_model", "label_names"] == str(SAMPLE_COHORT / "labels_total.json")
    assert manifest.loc["mr", "label_names"] == str(SAMPLE_COHORT / "labels_total_mr.json")
    assert "warning: retained_manifest.csv mixes label tables whose values mean different classes" in out
    assert "10 is lung_upper_lobe_left in ct_full_model" in out and "lung_left in mr" in out
    from auvcore.datasets import discover_cases

    specs = {spec.case_id: spec for spec in discover_cases(results_folder / "retained_manifest.csv")}  # a manifest again
    assert specs["mr"].name_of(10) == "lung_left" and specs["ct_full_model"].name_of(10) == "lung_upper_lobe_left"


def test_the_summary_adds_up_when_a_manual_include_overrides_the_quantile(results_folder, capsys):
    _auv("filter", str(results_folder), "--keep", "0.5")
    quantile = load_exclusions(results_folder / "exclusions.json").excluded()
    assert _auv("include", "ct_fast_model", "--results", str(results_folder)) == 0
    assert _auv("exclude", "mr", "--results", str(results_folder), "--reason", "wrong sequence") == 0
    capsys.readouterr()
    assert _auv("filter", str(results_folder)) == 0
    out = capsys.readouterr().out
    excluded = load_exclusions(results_folder / "exclusions.json").excluded()
    assert excluded == (quantile - {"ct_fast_model"}) | {"mr"}
    by_quantile = len(quantile - {"ct_fast_model"})
    assert (f"excluded {len(excluded)}: {by_quantile} by the quantile rule, 1 by hand; "
            "1 the quantile would exclude, included by hand (ct_fast_model)") in out
