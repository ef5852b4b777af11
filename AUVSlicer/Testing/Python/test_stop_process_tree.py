"""Stop ends the worker, not only the process the module started (defect 4).

Inside Slicer a job's program is ``PythonSlicer``, the CTK app launcher: it
starts ``python-real`` as a child and forwards no signal, so ending the
launcher alone leaves the worker computing. ``LAUNCHER`` below behaves the
same way: it starts a child Python (the worker, which writes its pid and keeps
printing progress) and dies on SIGTERM without passing it on. Both job classes
are stopped mid-run and the worker's own pid must be gone; the Qt job runs on
a real ``QProcess`` (PyQt5 standing in for Slicer's PythonQt ``qt`` module).
"""

from __future__ import annotations

import importlib
import sys
import time
import types
from pathlib import Path

import psutil
import pytest
from AUVSlicerLib.job_runner import JobStatus, SubprocessJob

WORKER = """
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
for i in range(1, 1000):
    print(f"PROGRESS case={i}/999 id=case_{i} status=ok", flush=True)
    time.sleep(0.2)
"""

LAUNCHER = """
import subprocess, sys
sys.exit(subprocess.call([sys.executable, "-c", sys.argv[1], sys.argv[2]]))
"""


def _worker_pid(pid_file: Path) -> int:
    deadline = time.monotonic() + 30
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(pid_file.read_text())


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _launcher_command(pid_file: Path) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, WORKER, str(pid_file)]


def test_the_subprocess_job_stop_ends_the_worker_behind_a_launcher(tmp_path):
    job = SubprocessJob(_launcher_command(tmp_path / "worker.pid"), grace_seconds=5)
    job.start()
    worker = _worker_pid(tmp_path / "worker.pid")
    assert psutil.Process(worker).ppid() != 0 and job.running
    job.stop()
    assert _gone(worker), "the worker behind the launcher still runs after Stop"
    assert job.monitor.status is JobStatus.STOPPED


@pytest.fixture
def pyqt_qt(monkeypatch):
    """PyQt5's QtCore as the ``qt`` module, with a core application for signals and timers."""
    QtCore = pytest.importorskip("PyQt5.QtCore", reason="PyQt5 runs the real QProcess of the Qt job test")
    module = types.ModuleType("qt")
    module.__dict__.update({name: getattr(QtCore, name) for name in dir(QtCore) if name.startswith("Q")})
    application = QtCore.QCoreApplication.instance() or QtCore.QCoreApplication([])
    monkeypatch.setitem(sys.modules, "qt", module)
    monkeypatch.delitem(sys.modules, "AUVSlicerLib.qt_job", raising=False)
    yield application


def _process_events(application, seconds: float, until=lambda: False) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        application.processEvents()
        time.sleep(0.02)


def test_the_qt_job_stop_ends_the_worker_behind_a_launcher(tmp_path, pyqt_qt):
    qt_job = importlib.import_module("AUVSlicerLib.qt_job")
    ended: list[int] = []
    job = qt_job.QtProcessJob(_launcher_command(tmp_path / "worker.pid"), grace_seconds=2, on_finished=ended.append)
    job.start()
    worker = _worker_pid(tmp_path / "worker.pid")
    _process_events(pyqt_qt, 10, until=lambda: job.monitor.progress is not None)
    assert job.monitor.progress is not None, "progress arrives through the QProcess signals"
    job.stop()
    _process_events(pyqt_qt, 10, until=lambda: bool(ended))
    assert ended and job.monitor.status is JobStatus.STOPPED
    assert _gone(worker), "the worker behind the launcher still runs after Stop"
    assert not job.running


def test_the_qt_job_reports_success_and_a_program_that_cannot_start(tmp_path, pyqt_qt):
    qt_job = importlib.import_module("AUVSlicerLib.qt_job")
    ended: list[int] = []
    job = qt_job.QtProcessJob([sys.executable, "-c", "print('PROGRESS case=1/1 id=x status=ok')"],
                              on_finished=ended.append)
    job.start()
    assert job.wait(30) == 0 and ended == [0]
    assert job.monitor.progress.case_id == "x" and job.monitor.status is JobStatus.SUCCEEDED
    missing = qt_job.QtProcessJob([str(tmp_path / "PythonSlicer")], on_finished=ended.append)
    missing.start()
    _process_events(pyqt_qt, 5, until=lambda: len(ended) == 2)
    assert ended[-1] == -1 and missing.monitor.status is JobStatus.FAILED
    assert "could not start" in missing.monitor.log[-1]
