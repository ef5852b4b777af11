"""Run a background job (``auv score`` / ``auv train``) and follow its output, without Qt.

:class:`JobMonitor` is the state machine the widget shares with the tests: it
turns raw output into log lines and progress and knows how the job ended.
:class:`SubprocessJob` drives a real process with it, for headless use and
tests; inside Slicer :class:`AUVSlicerLib.qt_job.QtProcessJob` drives the same
monitor from a ``qt.QProcess`` (GUI thread, signals). Both stop the same way
(:mod:`AUVSlicerLib.process_tree`): ask the whole process tree to end, kill
what is left after :data:`STOP_GRACE_SECONDS`. The core writes its results
atomically, so a stopped run leaves finished cases intact and a rerun resumes
from its cache.

Example:
    >>> monitor = JobMonitor()
    >>> monitor.started()
    >>> monitor.feed(b"loading\\nPROGRESS case=1/2 id=a status=ok\\nPROGRE")
    ['loading', 'PROGRESS case=1/2 id=a status=ok']
    >>> monitor.progress.fraction
    0.5
    >>> monitor.finished(0)
    >>> monitor.status
    <JobStatus.SUCCEEDED: 'succeeded'>
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auvcore.results import Progress

#: Seconds between asking a job to stop and killing it.
STOP_GRACE_SECONDS = 10.0
#: Log lines kept in memory (the view shows the tail of a long training run).
LOG_LIMIT = 5000

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class JobStatus(Enum):
    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def active(self) -> bool:
        return self in (JobStatus.RUNNING, JobStatus.STOPPING)


def job_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a job: ``base`` (default: this process's) with unbuffered Python output,
    so PROGRESS lines arrive as they are printed rather than when a pipe buffer fills."""
    environment = dict(os.environ if base is None else base)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


class JobMonitor:
    """Log lines, latest progress and final status of one job run.

    Args:
        on_line: called with each complete output line.
        on_progress: called with each parsed PROGRESS report.
        reads_progress: False for a process that prints no PROGRESS lines and may run before
            ``auvcore`` (their parser) is installed, such as the PyTorch probe.
    """

    def __init__(self, on_line: Callable[[str], None] | None = None,
                 on_progress: Callable[[Progress], None] | None = None, reads_progress: bool = True) -> None:
        self.on_line = on_line
        self.on_progress = on_progress
        self.reads_progress = reads_progress
        self.status = JobStatus.IDLE
        self.exit_code: int | None = None
        self.progress: Progress | None = None
        self.log: deque[str] = deque(maxlen=LOG_LIMIT)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def started(self) -> None:
        """A new run began: forget the previous one."""
        self.status = JobStatus.RUNNING
        self.exit_code = None
        self.progress = None
        self.log.clear()
        self._decoder.reset()
        self._partial = ""

    def feed(self, data: bytes | str) -> list[str]:
        """Take a chunk of output (any split, UTF-8 bytes or text); returns the lines it completed.

        Carriage returns end lines too, so progress bars drawn with ``\\r`` become lines.
        """
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        pieces = _LINE_BREAK.split(self._partial + text)
        self._partial = pieces.pop()
        lines = [piece for piece in pieces if piece.strip()]
        for line in lines:
            self._take(line)
        return lines

    def _take(self, line: str) -> None:
        self.log.append(line)
        if self.on_line:
            self.on_line(line)
        if not self.reads_progress:
            return
        # The core's one parser, imported here: the panel is built before auvcore may be installed.
        from auvcore.results import parse_progress_line

        progress = parse_progress_line(line)
        if progress is not None:
            self.progress = progress
            if self.on_progress:
                self.on_progress(progress)

    def stop_requested(self) -> None:
        if self.status is JobStatus.RUNNING:
            self.status = JobStatus.STOPPING

    def finished(self, exit_code: int) -> None:
        """The process ended with ``exit_code``: flush the last partial line and settle the status."""
        tail = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if tail.strip():
            self._take(tail)
        self.exit_code = exit_code
        if self.status is JobStatus.STOPPING:
            self.status = JobStatus.STOPPED
        else:
            self.status = JobStatus.SUCCEEDED if exit_code == 0 else JobStatus.FAILED

    def failed_to_start(self, reason: str) -> None:
        self._take(reason)
        self.status = JobStatus.FAILED

    def summary(self) -> str:
        """One line for a status label."""
        if self.status is JobStatus.IDLE:
            return "No job has run."
        progress = f" - {self.progress.describe()}" if self.progress else ""
        if self.status is JobStatus.FAILED and self.exit_code is not None:
            last = self.log[-1] if self.log else ""
            return f"Failed (exit code {self.exit_code}){progress}: {last}"
        return f"{self.status.value.capitalize()}{progress}"


class SubprocessJob:
    """A job run with :mod:`subprocess`; output is read on a thread into a :class:`JobMonitor`.

    Example:
        >>> import sys
        >>> job = SubprocessJob([sys.executable, "-c", "print('PROGRESS case=1/1 id=x status=ok')"])
        >>> job.start(); job.wait(30)
        0
        >>> job.monitor.progress.case_id
        'x'
    """

    def __init__(self, command: Sequence[str], monitor: JobMonitor | None = None,
                 environment: Mapping[str, str] | None = None, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        self.command = list(command)
        self.monitor = monitor or JobMonitor()
        self.environment = job_environment(environment)
        self.grace_seconds = grace_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("the job is already running")
        self.monitor.started()
        try:
            self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             env=self.environment)
        except OSError as error:
            self.monitor.failed_to_start(f"could not start {self.command[0]}: {error}")
            raise
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for chunk in iter(lambda: self._process.stdout.read1(4096), b""):
            self.monitor.feed(chunk)
        self.monitor.finished(self._process.wait())

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int:
        """End the job and every process it started (terminate, kill after the grace period); returns the exit code."""
        if self._process is None:
            raise RuntimeError("the job was never started")
        if self._process.poll() is None:
            # psutil comes with auvcore, which is installed before any job runs.
            from .process_tree import ProcessTree

            self.monitor.stop_requested()
            tree = ProcessTree.of(self._process.pid)
            tree.terminate()
            tree.wait(self.grace_seconds)
        return self.wait(self.grace_seconds)

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the job ended and its output is read; returns the exit code."""
        if self._process is None or self._reader is None:
            raise RuntimeError("the job was never started")
        code = self._process.wait(timeout)
        self._reader.join(timeout)
        return code
