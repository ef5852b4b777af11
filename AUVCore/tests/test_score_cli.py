"""`auv score` end to end with the real LiteMedSAM on small crops of the real cohort."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from auvcore.cli import main
from auvcore.scales import CohortReference


def test_results_table_and_case_files(scored):
    table = pd.read_csv(scored / "results.csv")
    assert list(table["case_id"]) == ["ct_full", "ct_fast", "mr"]
    assert list(table.columns[:3]) == ["case_id", "auv", "S"]
    assert {"S_liver", "S_spleen", "S_kidney_right", "S_stomach"} <= set(table.columns)
    assert (table["status"] == "ok").all()
    assert table["auv"].min() == 0.0 and table["auv"].max() == 1.0
    per_class = table.filter(like="S_")
    np.testing.assert_allclose(per_class.sum(axis=1, skipna=True), table["S"], rtol=1e-9)
    assert pd.read_parquet(scored / "results.parquet")["case_id"].tolist() == table["case_id"].tolist()

    record = json.loads((scored / "cases" / "ct_full.json").read_text())
    assert record["backbone"] == "litemedsam" and record["mode"] == "classwise" and record["modality"] == "ct"
    assert {c["name"] for c in record["classes"]} == {"liver", "spleen", "kidney_right", "stomach"}
    for item in record["classes"]:
        assert item["U"] == pytest.approx(1 - item["S"])
    assert set(record["timings"]) >= {"io", "encoder", "decoder", "spectrum", "total"}
    assert record["versions"]["torch"] and record["geometry"]["spacing"] == [3.0, 3.0, 3.0]
    assert record["auv"] == pytest.approx(table.set_index("case_id").loc["ct_full", "auv"])
    mr = json.loads((scored / "cases" / "mr.json").read_text())
    assert mr["modality"] == "mr" and mr["absent_classes"] == ["kidney_right", "stomach"]

    reference = json.loads((scored / "reference.json").read_text())
    assert reference["n_cases"] == 3 and reference["backbone"] == "litemedsam"


def test_both_labelings_share_one_encoder_pass(scored):
    full = json.loads((scored / "cases" / "ct_full.json").read_text())
    fast = json.loads((scored / "cases" / "ct_fast.json").read_text())
    assert full["slices_encoded"] > 0 and fast["slices_encoded"] == 0


def test_rerun_resumes_from_cache_and_rescores_a_changed_file(scored, small_cohort, tmp_path, capsys):
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort, cohort)
    out = tmp_path / "out"
    shutil.copytree(scored, out)
    assert main(["score", str(cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PROGRESS")]
    assert lines == [
        "PROGRESS case=1/3 id=ct_full status=cached",
        "PROGRESS case=2/3 id=ct_fast status=cached",
        "PROGRESS case=3/3 id=mr status=cached",
    ]
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), pd.read_csv(scored / "results.csv"))

    labels = sitk.ReadImage(str(cohort / "mr_seg.nii.gz"))
    array = sitk.GetArrayFromImage(labels)
    array[array == 1] = 0  # drop the spleen
    changed = sitk.GetImageFromArray(array)
    changed.CopyInformation(labels)
    sitk.WriteImage(changed, str(cohort / "mr_seg.nii.gz"))
    assert main(["score", str(cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "PROGRESS case=3/3 id=mr status=ok"
    assert [c["name"] for c in json.loads((out / "cases" / "mr.json").read_text())["classes"]] == ["liver"]


def test_bad_case_is_reported_and_the_others_are_kept(scored, small_cohort, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort, cohort)
    (cohort / "mr_seg.nii.gz").write_bytes((small_cohort / "mr_seg.nii.gz").read_bytes()[:300])
    out = tmp_path / "out"
    shutil.copytree(scored, out)
    assert main(["score", str(cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]) == 1
    table = pd.read_csv(out / "results.csv").set_index("case_id")
    assert table.loc["mr", "status"] == "error" and "mr_seg.nii.gz: is truncated" in table.loc["mr", "error"]
    assert (table.loc[["ct_full", "ct_fast"], "status"] == "ok").all()
    assert json.loads((out / "cases" / "ct_full.json").read_text())["status"] == "ok"


def test_one_case_against_a_reference_cohort_through_the_console_script(scored, small_cohort, tmp_path):
    out = tmp_path / "single"
    command = [sys.executable, "-m", "auvcore.cli", "score", str(small_cohort / "ct.nii.gz"),
               "--label", str(small_cohort / "ct_fast.nii.gz"), "--label-names", str(small_cohort / "labels.json"),
               "--out", str(out), "--reference", str(scored / "reference.json"), "--device", "cpu", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "PROGRESS case=1/1 id=ct status=ok" in result.stdout
    single = pd.read_csv(out / "results.csv").iloc[0]
    cohort = pd.read_csv(scored / "results.csv").set_index("case_id")
    assert single["S"] == pytest.approx(cohort.loc["ct_fast", "S"], abs=1e-6)
    reference = CohortReference.from_dict(json.loads((scored / "reference.json").read_text()))
    assert single["auv"] == pytest.approx(float(reference.place(single["S"])[0]))
    assert not (out / "reference.json").exists()


def test_reference_from_other_settings_is_refused(scored, small_cohort, tmp_path, capsys):
    code = main(["score", str(small_cohort / "mr.nii.gz"), "--mode", "image", "--out", str(tmp_path),
                 "--reference", str(scored / "reference.json"), "--device", "cpu"])
    assert code == 2
    assert "reference.json: was made with other scoring settings; the case has mode 'image'" in capsys.readouterr().err


def test_image_mode_without_labels(small_cohort, tmp_path):
    assert main(["score", str(small_cohort / "mr.nii.gz"), "--mode", "image", "--out", str(tmp_path), "--device", "cpu", "--no-progress"]) == 0
    table = pd.read_csv(tmp_path / "results.csv")
    assert list(table.columns[:4]) == ["case_id", "auv", "S", "S_image"]
    assert 0.0 < table.loc[0, "S"] < 1.0


def test_adding_scorers_says_why_the_pass_runs_again_and_fewer_scorers_reuse_it(scored, small_cohort, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(scored, out)
    arguments = ["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]
    assert main([*arguments, "--scorers", "agreement"]) == 0
    printed = capsys.readouterr().out
    assert "ct_full: its saved scores lack agreement, so its model pass runs again" in printed
    assert "ran the model again for 3 case(s) scored before without agreement" in printed
    assert printed.count("status=ok") == 3
    assert main(arguments) == 0  # auv alone: every case was scored with more, so nothing runs
    printed = capsys.readouterr().out
    assert printed.count("status=cached") == 3 and "runs again" not in printed
    assert "agreement" not in pd.read_csv(out / "results.csv").columns  # the columns are those asked for
    assert main([*arguments, "--scorers", "agreement"]) == 0
    assert capsys.readouterr().out.count("status=cached") == 3


def test_the_demo_scores_what_the_review_needs():
    from auvcore.cli import build_parser
    from auvcore.scorers.registry import LABEL_CHECK_PARTS

    scorers = build_parser().parse_args(["demo"]).scorers
    assert "label_check" in scorers and set(LABEL_CHECK_PARTS) <= set(scorers)


def test_the_class_set_warning_is_said_once_on_stdout_and_recommends_calibrated(scored, small_cohort, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(scored, out)
    assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    captured = capsys.readouterr()
    warning = "warning: the cases hold different class sets (2 to 4 classes)"
    assert captured.out.count(warning) == 1 and "--aggregate calibrated" in captured.out
    assert "auv: warning: auv:" not in captured.out + captured.err and "mean or max" not in captured.out + captured.err
    from auvcore.report import write_report

    page = write_report(out, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "the cases hold different class sets (2 to 4 classes)" in page and "--aggregate calibrated" in page


def test_one_case_placed_on_a_reference_gets_the_z_of_its_structures(scored, small_cohort, tmp_path, capsys):
    single = ["score", str(small_cohort / "ct.nii.gz"), "--label", str(small_cohort / "ct_fast.nii.gz"),
              "--label-names", str(small_cohort / "labels.json"), "--device", "cpu", "--no-progress"]
    assert main([*single, "--out", str(tmp_path / "single"), "--reference", str(scored)]) == 0
    structures = pd.read_csv(tmp_path / "single" / "structures.csv")
    assert structures["auv_z"].notna().all(), structures[["class", "auv_z"]]
    cohort = pd.read_csv(scored / "structures.csv").set_index(["case_id", "class"])
    assert structures.set_index("class")["auv_z"].to_dict() == pytest.approx(cohort.loc["ct_fast", "auv_z"].to_dict())
    assert set(structures["judged_against"]) <= {"pooled", "none"}  # the reference has 2 CT cases: too few to judge
    # A reference saved before it kept the structures' statistics: the z stay empty, and the run says why.
    old = json.loads((scored / "reference.json").read_text())
    del old["structure_scales"], old["lookalikes"]
    (tmp_path / "old_reference.json").write_text(json.dumps(old))
    capsys.readouterr()
    assert main([*single, "--out", str(tmp_path / "on_old"), "--reference", str(tmp_path / "old_reference.json")]) == 0
    assert "holds no per-class statistics of auv" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "on_old" / "structures.csv")["auv_z"].isna().all()


HOLD_THE_LOCK = """
import sys
from auvcore.results import writer_lock
with writer_lock(sys.argv[1], command="auv score held by the test"):
    print("held", flush=True)
    sys.stdin.readline()  # until the test lets go
"""


def _hold_writer_lock(folder) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _done(holder: subprocess.Popen) -> None:
    """Let the holder go now if it still holds the lock (a failed test), and wait for it to end."""
    if holder.poll() is None:
        try:
            holder.stdin.write("go\n")
            holder.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
    holder.wait(timeout=60)


def _let_go(holder: subprocess.Popen, after: float) -> threading.Timer:
    """Release the holder's lock ``after`` seconds from now (while this process waits for it)."""
    def release() -> None:
        holder.stdin.write("go\n")
        holder.stdin.flush()
    timer = threading.Timer(after, release)
    timer.start()
    return timer


def test_a_second_writer_waits_naming_the_first_then_finds_its_work_done(scored, small_cohort, tmp_path, capsys):
    from auvcore.report import write_report
    from auvcore.results import FolderBusyError, held_by, writer_lock

    out = tmp_path / "out"
    shutil.copytree(scored, out)
    holder = _hold_writer_lock(out)
    try:
        assert held_by(out).pid == holder.pid
        with pytest.raises(FolderBusyError, match=rf"is being written by another process: pid {holder.pid} \(auv score held by the test\), started"):
            with writer_lock(out, timeout=0):
                pass
        write_report(out, tmp_path / "report.html")  # a reader is not held up
        _let_go(holder, 3.0)
        assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    finally:
        _done(holder)
    captured = capsys.readouterr()
    assert f"is being written by pid {holder.pid} (auv score held by the test)" in captured.err and "waiting" in captured.err
    assert captured.out.count("status=cached") == 3
    assert held_by(out) is None and not (out / ".auv-writer.json").exists()


def test_two_filters_at_once_write_one_after_the_other(scored, tmp_path, capsys):
    from auvcore.results import held_by

    out = tmp_path / "out"
    shutil.copytree(scored, out)
    holder = _hold_writer_lock(out)
    try:
        _let_go(holder, 2.0)
        assert main(["filter", str(out), "--keep", "0.5"]) == 0
    finally:
        _done(holder)
    captured = capsys.readouterr()
    assert f"is being written by pid {holder.pid}" in captured.err
    assert "wrote" in captured.out and held_by(out) is None
