"""One writer at a time per results folder: a file lock, and who holds it.

``auv score``, ``auv merge``, ``auv filter``, ``auv exclude`` / ``include`` and
``auv demo`` take the folder's writer lock for as long as they write; a second
writer waits for the first, saying whom it waits for (or, with ``timeout=0``,
is refused with :class:`FolderBusyError` naming that process), and then finds
the first one's cases in the cache instead of doing the work again. Readers
(``auv report``, the Slicer module's browser) take no lock: every file is
written atomically, so they read whole files.

The lock is ``OUT/.auv-writer.lock`` (:mod:`filelock`: released by the system
when its process dies, so a crash never leaves the folder locked); beside it,
``OUT/.auv-writer.json`` names the holder: pid, command line, start time and
host. ``auv score --shard i/n`` takes a lock of its own shard
(``OUT/.auv-writer-shard-i-of-n.lock``), so the shards of one cohort write
their cases side by side, while a whole-folder writer waits for every shard
and a shard for any whole-folder writer.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with writer_lock(folder, "auv filter results"):
    ...     held_by(folder).command
    'auv filter results'
    >>> held_by(folder) is None
    True
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from ..errors import InputError
from ..files import write_json_atomic

LOCK_NAME = ".auv-writer.lock"
HOLDER_NAME = ".auv-writer.json"
#: How often (s) a waiting writer tries the lock again.
POLL_S = 0.5

#: Folders (resolved) whose writer lock this process holds, with how many nested holders: a library call that
#: locks inside a command that already does is let through, not deadlocked on its own lock.
_HELD: dict[tuple[Path, str], int] = {}


class FolderBusyError(InputError):
    """Another process is writing the results folder."""


@dataclass(frozen=True)
class Holder:
    """The process that holds a folder's writer lock."""

    pid: int
    command: str
    started: str
    host: str

    def describe(self) -> str:
        """E.g. ``pid 4242 (auv score data --out out), started 2026-12-07T10:00:00+00:00``."""
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where} ({self.command}), started {self.started}"


def _names(shard: tuple[int, int] | None) -> tuple[str, str]:
    if shard is None:
        return LOCK_NAME, HOLDER_NAME
    stem = f".auv-writer-shard-{shard[0]}-of-{shard[1]}"
    return f"{stem}.lock", f"{stem}.json"


def held_by(folder: str | Path, shard: tuple[int, int] | None = None) -> Holder | None:
    """Who holds the folder's (or a shard's) writer lock now; None when nobody does.

    A holder file left by a process that died is not a holder: the lock itself is free then.
    """
    lock_name, holder_name = _names(shard)
    folder = Path(folder)
    if not (folder / lock_name).exists():
        return None
    probe = FileLock(str(folder / lock_name))
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return _read_holder(folder / holder_name)
    probe.release()
    return None


def _read_holder(path: Path) -> Holder:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["command"]), str(data["started"]), str(data["host"]))
    except (OSError, ValueError, KeyError, TypeError):  # taken a moment ago, not yet named
        return Holder(0, "another auv process, not yet named", "just now", socket.gethostname())


def _default_command() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([program, *sys.argv[1:]])


def _say(message: str) -> None:
    print(f"auv: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def writer_lock(folder: str | Path, command: str | None = None, timeout: float | None = None,
                shard: tuple[int, int] | None = None, on_wait: Callable[[str], None] | None = _say) -> Iterator[None]:
    """Hold ``folder``'s writer lock (the folder is made when missing) for the block.

    Args:
        command: what this process is, for the holder file (default: its command line).
        timeout: seconds to wait for another writer; None waits as long as it takes, 0 refuses at once.
        shard: ``(i, n)``: the lock of shard i of n (``auv score --shard``), taken beside those of the other
            shards; a whole-folder writer is waited for first.
        on_wait: told, once, whom this process waits for.

    Raises:
        FolderBusyError: naming the folder and the process that holds it, when ``timeout`` ran out.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = (folder.resolve(), _names(shard)[0])
    if key in _HELD:  # this process holds it already (a command around a library call)
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    lock_name, holder_name = _names(shard)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_acquired(folder, lock_name, holder_name, timeout, on_wait))
        others = [(LOCK_NAME, HOLDER_NAME)] if shard is not None else \
            [(p.name, p.name.removesuffix(".lock") + ".json") for p in sorted(folder.glob(".auv-writer-shard-*.lock"))]
        for other_lock, other_holder in others:  # wait for them to finish, without holding them
            with _acquired(folder, other_lock, other_holder, timeout, on_wait):
                pass
        _write_holder(folder / holder_name, command)
        stack.callback(_remove_holder, folder / holder_name)
        _HELD[key] = 1
        stack.callback(_HELD.pop, key, None)
        yield


@contextlib.contextmanager
def _acquired(folder: Path, lock_name: str, holder_name: str, timeout: float | None,
              on_wait: Callable[[str], None] | None) -> Iterator[None]:
    lock = FileLock(str(folder / lock_name))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read_holder(folder / holder_name)
        message = f"{folder} is being written by {holder.describe()}"
        if timeout == 0:
            raise FolderBusyError(folder, f"is being written by another process: {holder.describe()}; wait for it to "
                                          "finish (or stop it), then run this again") from None
        if on_wait is not None:
            on_wait(f"{message}; waiting for it to finish (Ctrl-C to stop waiting)")
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout, poll_interval=POLL_S)
        except Timeout:
            raise FolderBusyError(folder, f"is still being written by {holder.describe()} after {timeout:g} s") from None
    try:
        yield
    finally:
        lock.release()


def _write_holder(path: Path, command: str | None) -> None:
    holder = Holder(os.getpid(), command or _default_command(), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    socket.gethostname())
    write_json_atomic(path, asdict(holder))


def _remove_holder(path: Path) -> None:
    """Remove the holder file if it still names this process (a later holder's is left alone)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass
