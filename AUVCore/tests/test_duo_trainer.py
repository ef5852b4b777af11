"""``auv train`` / ``auv predict`` on the real sample cohort, on the CPU: tiny runs, faults, resume."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from auvcore.cli import main
from auvcore.curation import ExclusionList, save_exclusions
from auvcore.duo.checkpoint import LATEST, MODEL, load_checkpoint

PROGRESS = re.compile(r"^PROGRESS epoch=(\d+)/(\d+) step=(\d+)/(\d+) loss=(\S+) dice=(\S+)(?: status=(\w+))?$")
#: A tiny, fast run: three classes, 32^3 patches, 8 base filters, 3 steps per epoch.
TINY = ["--patch", "32", "--base-filters", "8", "--batch", "2", "--classes", "liver,spleen,kidney_left",
        "--steps-per-epoch", "3", "--device", "cpu", "--log-every", "1", "--seed", "3"]


def _progress(text: str) -> list[tuple[int, int, float, str | None]]:
    """(epoch, step, loss, status) of every PROGRESS line."""
    found = []
    for line in text.splitlines():
        match = PROGRESS.match(line.strip())
        if match:
            found.append((int(match[1]), int(match[3]), float(match[5]), match[7]))
    return found


def _run_in_child(log: Path, *args: str) -> multiprocessing.Process:
    """``auv ARGS`` in a forked child (no second import of torch and MONAI), stdout to ``log``."""

    def child() -> None:
        torch.set_num_threads(1)
        with log.open("w", buffering=1) as stream, contextlib.redirect_stdout(stream):
            code = main(list(args))
        os._exit(code)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    return process


def _wait_for(condition: Callable[[], bool], process: multiprocessing.Process, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def manifest(sample_cohort: Path) -> str:
    return str(sample_cohort / "manifest.csv")


@pytest.fixture(scope="module")
def reference_run(manifest: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """An uninterrupted 2-epoch DUO run, validated at the end, whose steps the resumed runs must repeat."""
    out = tmp_path_factory.mktemp("reference") / "run"
    log = out.parent / "stdout.txt"
    with log.open("w") as stream, contextlib.redirect_stdout(stream):
        assert main(["train", manifest, "--out", str(out), "--epochs", "2", *TINY]) == 0
    return out, _progress(log.read_text())


def test_duo_run_writes_checkpoints_metrics_and_progress(reference_run: tuple[Path, list]) -> None:
    out, progress = reference_run
    assert [(e, s) for e, s, _, status in progress if status is None] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert progress[-1][3] == "done"
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert set(lines[-1]["dice"]) == {"spleen", "kidney_left", "liver"}
    assert all(np.isfinite(line["loss"]) for line in lines) and 0 < lines[-1]["eps_hat"] < 0.5
    assert lines[1]["lr"] < lines[0]["lr"] == 0.01
    state = load_checkpoint(out / LATEST)
    assert state["epoch"] == 2 and state["step"] == 0 and state["duo"] is True
    assert any(key.startswith("noise_head.") for key in state["model"])
    assert json.loads((out / "plan.json").read_text())["classes"] == ["spleen", "kidney_left", "liver"]


def test_existing_run_is_not_overwritten(reference_run: tuple[Path, list], manifest: str, capsys: pytest.CaptureFixture) -> None:
    out, _ = reference_run
    assert main(["train", manifest, "--out", str(out), "--epochs", "1", *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_plain_run_with_exclusions(manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    exclusions = ExclusionList()
    exclusions.exclude("ct_fast_model", 0.97)
    save_exclusions(tmp_path / "exclusions.json", exclusions)
    out = tmp_path / "run"
    code = main(["train", manifest, "--out", str(out), "--no-duo", "--epochs", "1", "--val-fraction", "0",
                 "--exclusions", str(tmp_path / "exclusions.json"), *TINY])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "3 training and 0 validation cases, 1 excluded" in stdout and "DUO off" in stdout
    state = load_checkpoint(out / MODEL)
    assert state["duo"] is False and not any(k.startswith("noise_head.") for k in state["model"])


def test_killed_run_resumes_with_the_same_next_step(reference_run: tuple[Path, list], manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, reference = reference_run
    out = tmp_path / "run"
    metrics = out / "metrics.jsonl"
    process = _run_in_child(tmp_path / "log.txt", "train", manifest, "--out", str(out), "--epochs", "2", *TINY)
    _wait_for(lambda: metrics.exists() and bool(metrics.read_text().strip()), process)
    process.kill()
    process.join()
    done = load_checkpoint(out / LATEST)["epoch"]
    assert done >= 1, "the run was killed before its first checkpoint"
    if done == 2:
        pytest.skip("the run finished before it could be killed")
    assert main(["train", manifest, "--out", str(out), "--epochs", "2", "--resume", *TINY]) == 0
    resumed = _progress(capsys.readouterr().out)
    expected = {(e, s): loss for e, s, loss, status in reference if status is None}
    first_epoch, first_step, first_loss, _ = resumed[0]
    assert (first_epoch, first_step) == (done + 1, 1)
    assert first_loss == pytest.approx(expected[(first_epoch, first_step)], rel=1e-4)
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2]


def test_sigterm_stops_cleanly_and_resume_continues_mid_epoch(reference_run: tuple[Path, list], manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, reference = reference_run
    out, log = tmp_path / "run", tmp_path / "log.txt"
    process = _run_in_child(log, "train", manifest, "--out", str(out), "--epochs", "2", *TINY)
    _wait_for(lambda: log.exists() and "PROGRESS" in log.read_text(), process)
    os.kill(process.pid, signal.SIGTERM)
    process.join(timeout=60)
    assert process.exitcode == 128 + signal.SIGTERM  # stopped, not done: a shell's `&&` must not go on
    stopped = _progress(log.read_text())[-1]
    assert stopped[3] == "stopped"
    state = load_checkpoint(out / LATEST)
    assert (state["epoch"] + 1, state["step"]) == stopped[:2]
    assert main(["train", manifest, "--out", str(out), "--epochs", "2", "--resume", *TINY]) == 0
    resumed = _progress(capsys.readouterr().out)
    expected = {(e, s): loss for e, s, loss, status in reference if status is None}
    next_step = (stopped[0], stopped[1] + 1) if stopped[1] < 3 else (stopped[0] + 1, 1)
    assert resumed[0][:2] == next_step
    assert resumed[0][2] == pytest.approx(expected[next_step], rel=1e-4)
    assert resumed[-1][3] == "done"


def test_predict_writes_a_label_map_on_the_input_grid(reference_run: tuple[Path, list], sample_cohort: Path, tmp_path: Path) -> None:
    out, _ = reference_run
    image_path = sample_cohort / "example_ct_sm.nii.gz"
    # The same image stored in another orientation must give the same segmentation on its own grid.
    flipped_path = tmp_path / "ct_ras.nii.gz"
    sitk.WriteImage(sitk.DICOMOrient(sitk.ReadImage(str(image_path)), "RAS"), str(flipped_path))
    for source, seg in ((image_path, tmp_path / "seg.nii.gz"), (flipped_path, tmp_path / "seg_ras.nii.gz")):
        assert main(["predict", str(out / MODEL), str(source), "--out", str(seg), "--device", "cpu"]) == 0
        image, labels = sitk.ReadImage(str(source)), sitk.ReadImage(str(seg))
        assert labels.GetSize() == image.GetSize() and labels.GetSpacing() == image.GetSpacing()
        assert labels.GetOrigin() == image.GetOrigin() and labels.GetDirection() == image.GetDirection()
        assert set(np.unique(sitk.GetArrayFromImage(labels))) <= {0, 1, 3, 5}
    lps = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(tmp_path / "seg.nii.gz")), "LPS"))
    lps_from_ras = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(tmp_path / "seg_ras.nii.gz")), "LPS"))
    assert np.array_equal(lps, lps_from_ras)


def test_predict_rejects_a_file_that_is_not_a_checkpoint(sample_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bogus = tmp_path / "model.pt"
    torch.save({"something": 1}, bogus)
    code = main(["predict", str(bogus), str(sample_cohort / "example_ct_sm.nii.gz"), "--out", str(tmp_path / "s.nii.gz")])
    assert code == 2 and "not an auvcore checkpoint" in capsys.readouterr().err


def test_the_weights_share_benchmark_prints_its_figures(sample_cohort: Path):
    """Testing/benchmarks/duo_weights_share.py --smoke: both configurations, each with a share of the step in [0, 1]."""
    script = Path(__file__).resolve().parents[2] / "Testing" / "benchmarks" / "duo_weights_share.py"
    result = subprocess.run([sys.executable, str(script), "--smoke", "--steps", "1", "--threads", "1"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = re.findall(r"^(3d|2d): patch \(.*\) x 2: ([\d.]+) s/step, class weights ([\d.]+) ms/call, share ([\d.]+)%$",
                       result.stdout, flags=re.MULTILINE)
    assert [line[0] for line in lines] == ["3d", "2d"], result.stdout
    for _, step, weights, share in lines:
        assert float(step) > 0 and float(weights) > 0
        assert 0.0 <= float(share) / 100 <= 1.0
