"""Stop a job's whole process tree: the process the module started and every process below it.

Inside Slicer a job runs ``PythonSlicer``, the CTK app launcher, which starts
``python-real`` as a child and forwards no signal to it: ending the launcher
alone orphans the worker, which keeps computing. So a stop takes a snapshot of
the tree first (once the launcher is gone its children can no longer be
found from it), asks every process in it to end (SIGTERM on Linux and macOS;
on Windows psutil's ``terminate`` is ``TerminateProcess``, as a console process
ignores the WM_CLOSE that ``QProcess.terminate`` posts), and kills whatever
is still alive once the grace period is over.

Example:
    >>> import subprocess, sys
    >>> process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    >>> tree = ProcessTree.of(process.pid)
    >>> tree.terminate(); tree.wait(grace_seconds=10)
    []
    >>> tree.alive()
    []
"""

from __future__ import annotations

import time

import psutil

#: Seconds between looks at whether the tree has ended.
POLL_SECONDS = 0.05


class ProcessTree:
    """A snapshot of a process and its descendants, children first so none is reparented unseen."""

    def __init__(self, processes: list[psutil.Process]) -> None:
        self.processes = processes

    @classmethod
    def of(cls, pid: int) -> ProcessTree:
        """The tree rooted at ``pid`` as it is now; empty when that process has already ended."""
        try:
            root = psutil.Process(pid)
            return cls([*root.children(recursive=True), root])
        except psutil.NoSuchProcess:
            return cls([])

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def alive(self) -> list[psutil.Process]:
        """The processes still computing (an ended one waiting to be reaped is a zombie, not alive)."""
        return [process for process in self.processes if _computing(process)]

    def terminate(self) -> None:
        """Ask every process of the tree to end."""
        for process in self.processes:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass

    def kill(self) -> None:
        """End what is still running at once."""
        for process in self.alive():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass

    def wait(self, grace_seconds: float) -> list[psutil.Process]:
        """Wait up to ``grace_seconds`` for the tree to end, kill the survivors; returns the killed ones.

        Polls rather than waits: waiting would reap the process this one started, and its owner
        (``subprocess.Popen``, ``QProcess``) would lose its exit status.
        """
        deadline = time.monotonic() + grace_seconds
        while self.alive() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        survivors = self.alive()
        self.kill()
        return survivors


def _computing(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
