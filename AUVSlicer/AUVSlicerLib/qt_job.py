"""A background job on a ``qt.QProcess``: :class:`~AUVSlicerLib.job_runner.SubprocessJob`'s interface for the GUI thread.

Output and the end of the process arrive as Qt signals, so Slicer's GUI never
blocks; they feed the same :class:`~AUVSlicerLib.job_runner.JobMonitor`. Stop
follows the same policy as ``SubprocessJob``: the whole process tree is asked
to end (the CTK launcher forwards no signal to its ``python-real`` child) and
what is left after the grace period is killed, here from a ``QTimer`` instead
of a blocking wait. Once the started process has ended, any process left of a
stopped tree is killed at once, so a job that reads "Stopped" has no worker left.

Only signal attributes (``process.finished.connect``) and methods that PythonQt
and PyQt share are used, so the tests drive a real ``QProcess`` with PyQt5.

Example (inside Slicer):
    >>> job = QtProcessJob(["PythonSlicer", "-m", "auvcore.cli", "score", ...],   # doctest: +SKIP
    ...                    on_finished=lambda code: print("ended", code))
    >>> job.start(); job.stop()                                                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import qt

from .job_runner import STOP_GRACE_SECONDS, JobMonitor, job_environment


class QtProcessJob:
    """One run of ``command``; ``on_finished(exit_code)`` is called on the GUI thread when it ended
    (exit code -1 for a crash or a kill, and when the program could not start)."""

    def __init__(self, command: Sequence[str], monitor: JobMonitor | None = None,
                 environment: Mapping[str, str] | None = None, grace_seconds: float = STOP_GRACE_SECONDS,
                 on_finished: Callable[[int], None] | None = None) -> None:
        self.command = list(command)
        self.monitor = monitor or JobMonitor()
        self.environment = job_environment(environment)
        self.grace_seconds = grace_seconds
        self.on_finished = on_finished
        self._tree = None
        self._process = qt.QProcess()
        self._process.setProcessChannelMode(qt.QProcess.MergedChannels)
        self._process.readyReadStandardOutput.connect(self._read)
        # Slots take *args: which overload of finished/errorOccurred arrives differs between Qt bindings.
        self._process.finished.connect(self._finished)
        self._process.errorOccurred.connect(self._error)

    @classmethod
    def started(cls, command: Sequence[str], monitor: JobMonitor, on_finished: Callable[[int], None]) -> QtProcessJob:
        """A job of ``command`` already started: the panel's ``start_job``."""
        job = cls(command, monitor, on_finished=on_finished)
        job.start()
        return job

    @property
    def running(self) -> bool:
        return self._process.state() != qt.QProcess.NotRunning or bool(self._tree and self._tree.alive())

    @property
    def pid(self) -> int:
        return int(self._process.processId())

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the job is already running")
        self.monitor.started()
        self._tree = None
        environment = qt.QProcessEnvironment()
        for key, value in self.environment.items():
            environment.insert(key, value)
        self._process.setProcessEnvironment(environment)
        self._process.start(self.command[0], self.command[1:])

    def stop(self) -> None:
        """Ask the job's process tree to end; what is left after the grace period is killed."""
        if self._process.state() == qt.QProcess.NotRunning:
            return
        # psutil comes with auvcore, which is installed before any job runs.
        from .process_tree import ProcessTree

        self.monitor.stop_requested()
        self._tree = ProcessTree.of(self.pid)
        self._tree.terminate()
        qt.QTimer.singleShot(int(self.grace_seconds * 1000), self._tree.kill)

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the job ended (scripts and tests; the GUI uses ``on_finished``); its exit code or None."""
        self._process.waitForFinished(-1 if timeout is None else int(timeout * 1000))
        return self.monitor.exit_code

    def _read(self, *args) -> None:
        self.monitor.feed(bytes(self._process.readAllStandardOutput().data()))

    def _finished(self, *args) -> None:
        self._read()
        if self._tree is not None:
            self._tree.kill()  # the launcher is gone: its orphaned workers must not compute on
        normal = self._process.exitStatus() == qt.QProcess.NormalExit
        self.monitor.finished(int(self._process.exitCode()) if normal else -1)
        if self.on_finished:
            self.on_finished(self.monitor.exit_code)

    def _error(self, *args) -> None:
        if self._process.error() == qt.QProcess.FailedToStart:
            self.monitor.failed_to_start(f"could not start {self.command[0]}: {self._process.errorString()}")
            if self.on_finished:
                self.on_finished(-1)
