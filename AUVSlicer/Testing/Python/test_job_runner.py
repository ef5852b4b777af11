"""The job runner against real processes: live progress, exit codes, and a clean Stop."""

from __future__ import annotations

import sys
import time

import pytest
from auvcore.results import CaseProgress
from AUVSlicerLib.job_commands import ScoreJob, score_command
from AUVSlicerLib.job_runner import JobMonitor, JobStatus, SubprocessJob

# A stand-in cohort run: prints a PROGRESS line per "case", slowly, like `auv score` does.
SLOW_SCORER = """
import sys, time
n = int(sys.argv[1])
for i in range(1, n + 1):
    print(f"scoring case_{i}")
    print(f"PROGRESS case={i}/{n} id=case_{i} status=ok", flush=True)
    time.sleep(float(sys.argv[2]))
"""

# Ignores SIGTERM, so only the kill after the grace period ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("PROGRESS epoch=1/10 step=5 loss=0.9 dice=0.1", flush=True)
time.sleep(60)
"""


def test_monitor_reassembles_lines_split_anywhere_and_utf8_split_mid_character():
    monitor = JobMonitor()
    monitor.started()
    data = "naïve\r\nPROGRESS case=2/4 id=cas é status=error\nlast".encode()
    lines = []
    for index in range(len(data)):
        lines += monitor.feed(data[index:index + 1])
    assert lines == ["naïve", "PROGRESS case=2/4 id=cas é status=error"]
    assert monitor.progress == CaseProgress(2, 4, "cas", "error")
    monitor.finished(3)
    assert list(monitor.log)[-1] == "last"
    assert monitor.status is JobStatus.FAILED
    assert "exit code 3" in monitor.summary()


def test_progress_bars_redrawn_with_carriage_returns_become_lines():
    monitor = JobMonitor()
    monitor.started()
    assert monitor.feed("10%|#\r20%|##\r") == ["10%|#", "20%|##"]


def test_a_real_process_reports_live_progress_and_succeeds():
    seen: list[tuple[float, CaseProgress]] = []
    job = SubprocessJob([sys.executable, "-c", SLOW_SCORER, "3", "0.2"],
                        JobMonitor(on_progress=lambda p: seen.append((time.monotonic(), p))))
    started = time.monotonic()
    job.start()
    assert job.wait(60) == 0
    assert [p.index for _, p in seen] == [1, 2, 3]
    assert seen[0][0] - started < seen[-1][0] - started - 0.2, "progress must arrive while the job runs"
    assert job.monitor.status is JobStatus.SUCCEEDED
    assert "scoring case_2" in job.monitor.log


def test_stop_ends_a_running_job_with_sigterm():
    job = SubprocessJob([sys.executable, "-c", SLOW_SCORER, "100", "0.5"], grace_seconds=10)
    job.start()
    deadline = time.monotonic() + 30
    while job.monitor.progress is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.running
    started = time.monotonic()
    code = job.stop()
    assert time.monotonic() - started < 5, "a job that honours SIGTERM stops at once"
    assert code != 0 and not job.running
    assert job.monitor.status is JobStatus.STOPPED
    assert job.monitor.progress.index < 100


def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace_period():
    job = SubprocessJob([sys.executable, "-c", STUBBORN], grace_seconds=1.0)
    job.start()
    deadline = time.monotonic() + 30
    while job.monitor.progress is None and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    code = job.stop()
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 10
    assert code == -9 and job.monitor.status is JobStatus.STOPPED


def test_a_program_that_does_not_exist_fails_clearly():
    job = SubprocessJob(["/nonexistent/PythonSlicer", "-c", "pass"])
    with pytest.raises(OSError):
        job.start()
    assert job.monitor.status is JobStatus.FAILED
    assert "could not start /nonexistent/PythonSlicer" in job.monitor.log[-1]


def test_the_real_auv_score_reports_a_bad_input_and_fails(tmp_path):
    """The real CLI through the runner: a missing image fails the run with a message naming the file."""
    job = SubprocessJob(score_command(sys.executable, ScoreJob(
        dataset=str(tmp_path / "missing.nii.gz"), label=str(tmp_path / "missing_label.nii.gz"), output=str(tmp_path / "o"),
        device="cpu")))
    job.start()
    assert job.wait(300) != 0
    assert job.monitor.status is JobStatus.FAILED
    assert any("missing.nii.gz" in line for line in job.monitor.log)


def test_stop_ends_a_real_auv_score_run_cleanly(sample_manifest, tmp_path):
    """Stop the real ``auv score`` on the sample cohort mid-run: it ends at once and leaves no partial results file."""
    output = tmp_path / "scores"
    job = SubprocessJob(score_command(sys.executable, ScoreJob(dataset=str(sample_manifest), output=str(output),
                                                                    device="cpu")), grace_seconds=10)
    job.start()
    time.sleep(20)  # long enough to be scoring the first case
    assert job.running, "\n".join(job.monitor.log)
    started = time.monotonic()
    job.stop()
    assert time.monotonic() - started < 10
    assert job.monitor.status is JobStatus.STOPPED
    assert not (output / "results.csv").exists()
    assert not list(output.rglob("*.tmp"))
