"""Corrected labels in the results contract: saved beside review.json, never lost, read by every command.

On the small real cohort (crops of the sample CT with TotalSegmentator's labels, scored by the real
LiteMedSAM): a real structure edited voxel-wise, saved, read back; a kill at each step of a save; two
reviewers at once; and `auv filter`, `auv train`, `auv score` and the report using the correction.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from auvcore.cli import main
from auvcore.datasets import CaseSpec
from auvcore.duo.case_split import select_cases
from auvcore.duo.config import TrainConfig
from auvcore.errors import InputError
from auvcore.files import file_sha256
from auvcore.results import (
    FIXED,
    ResultsFolder,
    label_for,
    load_review,
    read_case_record,
    read_results,
    record_verdict,
    save_correction,
)
from auvcore.results.corrections import BEFORE_CORRECTION

LIVER = 5


def _copy(scored: Path, tmp_path: Path) -> ResultsFolder:
    target = tmp_path / "results"
    shutil.copytree(scored, target)
    return ResultsFolder(target)


def _source(folder: ResultsFolder, case_id: str) -> Path:
    return folder.recorded_path(read_case_record(folder.case_json(case_id)).label)


def _edited_liver(source: Path) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """The source label with 5 liver voxels removed on its boundary and 3 background voxels added to it."""
    image = sitk.ReadImage(str(source))
    values = sitk.GetArrayFromImage(image)
    liver = values == LIVER
    inner = np.zeros_like(liver)
    inner[:, 1:-1, 1:-1] = liver[:, 1:-1, 1:-1] & liver[:, :-2, 1:-1] & liver[:, 2:, 1:-1] & liver[:, 1:-1, :-2] & liver[:, 1:-1, 2:]
    boundary = np.argwhere(liver & ~inner)[:5]
    outside = np.argwhere((values == 0) & np.roll(liver, 1, axis=2))[:3]
    edited = values.copy()
    edited[tuple(boundary.T)] = 0
    edited[tuple(outside.T)] = LIVER
    corrected = sitk.GetImageFromArray(edited)
    corrected.CopyInformation(image)
    return corrected, boundary, outside


def test_a_saved_correction_differs_from_its_source_only_where_edited(scored_all: Path, tmp_path: Path):
    folder = _copy(scored_all, tmp_path)
    source = _source(folder, "ct_full")
    source_hash = file_sha256(source)
    corrected, removed, added = _edited_liver(source)

    saved = save_correction(folder, "ct_full", corrected, note="liver edge", reviewer="ana")

    assert file_sha256(source) == source_hash  # the source is only read
    assert saved.file == "corrections/ct_full.nii.gz" and (folder.root / saved.file).is_file()
    [change] = saved.changes
    assert (change.structure, change.value, change.added, change.removed) == ("liver", LIVER, 3, 5)
    assert 0.9 < change.dice < 1.0
    assert "label_check_z" in saved.scores_before["liver"]
    choice = label_for(folder, "ct_full")
    assert choice.corrected and choice.path == folder.root / saved.file
    written, original = sitk.ReadImage(str(choice.path)), sitk.ReadImage(str(source))
    assert written.GetPixelID() == original.GetPixelID() and written.GetSize() == original.GetSize()
    assert np.allclose(written.GetOrigin(), original.GetOrigin()) and np.allclose(written.GetDirection(), original.GetDirection())
    assert np.allclose(written.GetSpacing(), original.GetSpacing())
    before, after = sitk.GetArrayFromImage(original), sitk.GetArrayFromImage(written)
    differs = np.argwhere(before != after)
    assert sorted(map(tuple, differs)) == sorted(map(tuple, np.concatenate([removed, added])))
    others = (before != LIVER) & (after != LIVER)
    assert np.array_equal(before[others], after[others])  # every other class's voxels are identical
    verdict = load_review(folder.review).get("ct_full", "liver")
    assert (verdict.verdict, verdict.correction, verdict.reviewer, verdict.note) == (FIXED, saved.file, "ana", "liver edge")
    assert label_for(folder, "ct_full", original=True).path == source


def test_a_second_save_keeps_the_first_and_its_verdicts_follow_it(scored: Path, tmp_path: Path):
    folder = _copy(scored, tmp_path)
    source = _source(folder, "ct_full")
    first, _, _ = _edited_liver(source)
    save_correction(folder, "ct_full", first)
    values = sitk.GetArrayFromImage(first)
    values[values == 1] = 0  # then the spleen removed as well
    second = sitk.GetImageFromArray(values)
    second.CopyInformation(first)

    saved = save_correction(folder, "ct_full", second)

    review = load_review(folder.review)
    history = review.corrections["ct_full"]
    assert [c.file for c in history] == ["corrections/ct_full.1.nii.gz", "corrections/ct_full.nii.gz"]
    assert file_sha256(folder.root / history[0].file) == history[0].sha256  # the first is kept whole
    assert saved.structures == ("spleen", "liver") or set(saved.structures) == {"spleen", "liver"}
    assert review.get("ct_full", "spleen").correction == "corrections/ct_full.nii.gz"
    assert label_for(folder, "ct_full").path == folder.root / "corrections/ct_full.nii.gz"


def _grid_shifted(source: Path) -> sitk.Image:
    image = sitk.ReadImage(str(source))
    image.SetOrigin(tuple(o + 2.0 for o in image.GetOrigin()))
    return image


def _with_value(source: Path, value: int) -> sitk.Image:
    image = sitk.ReadImage(str(source))
    values = sitk.GetArrayFromImage(image)
    values[0, 0, 0] = value
    result = sitk.GetImageFromArray(values)
    result.CopyInformation(image)
    return result


@pytest.mark.parametrize(("case_id", "make", "problem"), [
    ("ct_full", _grid_shifted, "is not on the grid of its source .*origin"),
    ("ct_full", lambda source: _with_value(source, 77), r"holds label values \[77\]"),
    ("ct_full", lambda source: sitk.ReadImage(str(source)), "is identical to its source"),
    ("not_a_case", lambda source: sitk.ReadImage(str(source)), "has no case 'not_a_case'"),
])
def test_bad_corrections_are_refused_and_nothing_is_written(scored: Path, tmp_path: Path, case_id, make, problem):
    folder = _copy(scored, tmp_path)
    with pytest.raises(InputError, match=problem) as error:
        save_correction(folder, case_id, make(_source(folder, "ct_full")))
    assert case_id in str(error.value) or str(folder.root) in str(error.value)
    assert not folder.review.exists()
    assert not any(p.is_file() for p in folder.corrections_dir.rglob("*")) if folder.corrections_dir.exists() else True


_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import SimpleITK as sitk
    from auvcore.results import ResultsFolder, save_correction
    from auvcore.results import corrections, review
    folder, label, where = ResultsFolder(Path(sys.argv[1])), sys.argv[2], sys.argv[3]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "before-rename":
        corrections.os.replace = die
    else:
        corrections.write_review = die
    save_correction(folder, "ct_full", sitk.ReadImage(label))
""")


@pytest.mark.parametrize("where", ["before-rename", "before-review"])
def test_a_process_killed_during_a_save_leaves_the_previous_correction_whole(scored: Path, tmp_path: Path, where: str):
    folder = _copy(scored, tmp_path)
    first, _, _ = _edited_liver(_source(folder, "ct_full"))
    saved = save_correction(folder, "ct_full", first)
    review_before = folder.review.read_bytes()
    values = sitk.GetArrayFromImage(first)
    values[values == 1] = 0
    second = sitk.GetImageFromArray(values)
    second.CopyInformation(first)
    sitk.WriteImage(second, str(tmp_path / "second.nii.gz"))

    killed = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(folder.root), str(tmp_path / "second.nii.gz"), where],
                            capture_output=True, text=True, timeout=120)

    assert killed.returncode == -9, killed.stderr
    assert folder.review.read_bytes() == review_before  # review.json as it was, naming files that exist
    review = load_review(folder.review)
    assert all((folder.root / c.file).exists() for c in review.corrections["ct_full"])
    choice = label_for(folder, "ct_full")
    assert file_sha256(choice.path) == saved.sha256  # the previous correction, whole
    assert (where == "before-review") == bool(choice.note)  # an interrupted save is said
    save_correction(folder, "ct_full", second)  # the next save goes through and clears what the killed one left
    assert not list(folder.corrections_dir.glob(".*"))
    assert label_for(folder, "ct_full").note == ""
    history = load_review(folder.review).corrections["ct_full"]
    assert len(history) == 2 and all(file_sha256(folder.root / c.file) == c.sha256 for c in history)


_ONE_REVIEWER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import SimpleITK as sitk
    from auvcore.results import ResultsFolder, save_correction
    start = float(sys.argv[4])
    time.sleep(max(0.0, start - time.time()))
    save_correction(ResultsFolder(Path(sys.argv[1])), sys.argv[2], sitk.ReadImage(sys.argv[3]))
""")


def test_two_reviewers_saving_different_cases_at_once_keep_both(scored: Path, tmp_path: Path):
    import time

    folder = _copy(scored, tmp_path)
    files = {}
    for case_id in ("ct_full", "ct_fast"):
        corrected, _, _ = _edited_liver(_source(folder, case_id))
        files[case_id] = tmp_path / f"{case_id}_fixed.nii.gz"
        sitk.WriteImage(corrected, str(files[case_id]))
    start = time.time() + 3.0  # both processes save at the same moment
    processes = [subprocess.Popen([sys.executable, "-c", _ONE_REVIEWER, str(folder.root), case_id, str(path), str(start)])
                 for case_id, path in files.items()]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    review = load_review(folder.review)
    assert sorted(review.corrections) == ["ct_fast", "ct_full"]
    assert review.get("ct_full", "liver").verdict == review.get("ct_fast", "liver").verdict == FIXED
    for case_id in files:
        assert label_for(folder, case_id).corrected


def test_a_review_file_written_before_corrections_reads_unchanged(tmp_path: Path):
    path = tmp_path / "review.json"
    path.write_text(json.dumps({"format": 1, "verdicts": [
        {"case_id": "ct_7", "structure": "liver", "verdict": "needs_fix", "note": "tip", "time": "2026-12-02T10:02:11+00:00"}]}))
    review = load_review(path)
    assert review.get("ct_7", "liver").describe() == "needs_fix: tip" and review.corrections == {}
    record_verdict(path, "ct_7", "spleen", "correct")
    assert load_review(path).get("ct_7", "liver").describe() == "needs_fix: tip"
    with pytest.raises(InputError, match="recorded by saving a correction"):
        record_verdict(path, "ct_7", "liver", FIXED)


def test_a_source_changed_after_the_fix_is_refused_naming_both_files(scored: Path, tmp_path: Path):
    folder = _copy(scored, tmp_path)
    source = tmp_path / "ct_full_label.nii.gz"
    shutil.copy(_source(folder, "ct_full"), source)
    corrected, _, _ = _edited_liver(source)
    save_correction(folder, "ct_full", corrected, source=source)
    sitk.WriteImage(_grid_shifted(source), str(source))  # someone edits the source after the fix
    with pytest.raises(InputError, match="no longer matches the grid of its source") as error:
        label_for(folder, "ct_full")
    assert "corrections/ct_full.nii.gz" in str(error.value) and str(source) in str(error.value)
    assert label_for(folder, "ct_full", original=True).path == source  # --original-labels still works


def test_filter_and_training_read_the_corrected_label_unless_told_not_to(scored: Path, tmp_path: Path, capsys):
    folder = _copy(scored, tmp_path)
    corrected, _, _ = _edited_liver(_source(folder, "ct_full"))
    saved = save_correction(folder, "ct_full", corrected)
    fixed_path = os.path.abspath(folder.root / saved.file)

    assert main(["filter", str(folder.root), "--keep", "1.0"]) == 0
    assert "1 of 3 case(s) use their corrected label" in capsys.readouterr().out
    manifest = read_results_manifest(folder.root / "retained_manifest.csv")
    assert manifest["ct_full"] == fixed_path and manifest["ct_fast"] == read_results(folder.root).set_index("case_id").loc["ct_fast", "label"]
    assert main(["filter", str(folder.root), "--original-labels"]) == 0
    assert "the sources (--original-labels); 1 case(s) have a correction" in capsys.readouterr().out
    assert read_results_manifest(folder.root / "retained_manifest.csv")["ct_full"] == str(_source(folder, "ct_full"))

    on_results = select_cases(TrainConfig(dataset=str(folder.root), out=str(tmp_path / "run"), val_fraction=0.0))
    assert {s.case_id: str(s.label) for s in on_results.train}["ct_full"] == str(folder.root / saved.file)
    assert "use their corrected label" in on_results.labels and "exclusions.json" in on_results.labels
    manifest_dataset = select_cases(TrainConfig(dataset=str(folder.root / "retained_manifest.csv"), out=str(tmp_path / "run"),
                                                 exclusions=str(folder.exclusions), val_fraction=0.0, original_labels=True))
    assert {s.case_id: str(s.label) for s in manifest_dataset.train}["ct_full"] == str(_source(folder, "ct_full"))
    assert "--original-labels" in manifest_dataset.labels
    assert isinstance(on_results.train[0], CaseSpec)


def read_results_manifest(path: Path) -> dict[str, str]:
    import csv

    with path.open(newline="") as handle:
        return {row["case_id"]: row["label"] for row in csv.DictReader(handle)}


LOOP = Path(__file__).resolve().parents[2] / "Testing" / "benchmarks" / "correction_loop.py"


def test_the_correction_loop_benchmark_restores_the_score_of_the_planted_structure(scored_all: Path, small_cohort: Path,
                                                                                    tmp_path: Path):
    """Smoke run of Testing/benchmarks/correction_loop.py: dilate the liver of ct_full with the audit's code, score,
    write the clean liver back through the corrections contract, score again."""
    run = subprocess.run([sys.executable, str(LOOP), "--out", str(tmp_path), "--clean", str(scored_all), "--manifest",
                          str(small_cohort / "manifest.csv"), "--case", "ct_full", "--structure", "liver", "--runtime", "torch"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    import pandas as pd

    figures = pd.read_csv(tmp_path / "correction_loop.csv", index_col="score")
    agreement = figures.loc["agreement"]  # 1 - Dice of the model's mask and the label (z needs more than 3 cases)
    assert agreement["corrupted"] > agreement["clean"] + 0.02  # the dilated liver disagrees with the model
    assert np.allclose(figures["corrected"], figures["clean"], atol=1e-9, equal_nan=True)  # and is back where it was
    assert "ct_full | liver | +0 / -" in run.stdout and "correction_loop.py" in run.stdout  # the report's section
    last_scoring = run.stdout[run.stdout.rindex("labels: 1 of 3 case(s) use their corrected label"):]
    assert "id=ct_full status=ok" in last_scoring and "id=ct_fast status=cached" in last_scoring  # only it is rescored
    review = ResultsFolder(tmp_path / "review")
    record = read_case_record(review.case_json("ct_full"))
    assert record.label == str(review.root / "corrections" / "ct_full.nii.gz") == read_results(review.root).set_index(
        "case_id").loc["ct_full", "label"]
    before = record.extra[BEFORE_CORRECTION]  # the scores of the corrupted label, kept in the record
    assert before["label"].endswith("ct_full_dilate_liver.nii.gz")
    assert before["scores"]["agreement"]["liver"] == pytest.approx(agreement["corrupted"])
    assert label_for(review, "ct_full").corrected  # the table names the correction; its source is still known
    page = (review.root / "report.html").read_text()
    assert "not rescored yet" not in page and f"href='#correction-ct_full'>{FIXED}</a>" in page


def test_structure_changes_count_each_value_as_its_whole_masks_do():
    """Counted on the differing voxels only (for speed), the changes equal the masks' own counts, value by value."""
    from auvcore.results.corrections import structure_changes

    rng = np.random.default_rng(3)
    original = rng.choice([0, 0, 0, 1, 2, 5], size=(6, 20, 20))
    corrected = original.copy()
    corrected[2:4, 5:12, 3:9] = 5   # 5 grows over the others
    corrected[original == 2] = 0    # 2 disappears
    corrected[0, 0, :4] = 7         # a new value
    changes = {c.value: c for c in structure_changes(original, corrected, {1: "liver"})}
    for value in (1, 2, 5, 7):
        was, now = original == value, corrected == value
        added, removed = int((now & ~was).sum()), int((was & ~now).sum())
        dice = 2 * int((was & now).sum()) / (int(was.sum()) + int(now.sum()))
        assert (changes[value].added, changes[value].removed) == (added, removed)
        assert changes[value].dice == pytest.approx(dice)
    assert changes[1].structure == "liver" and changes[7].structure == "label_7"
    assert 0 not in changes and set(changes) == {1, 2, 5, 7}
