"""Small file utilities shared across the package: content hashes and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, or of every file of a folder (a DICOM series) in name order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        with item.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _new_file_mode(path: Path) -> int:
    """The existing file's permissions, else what the umask gives a new file (mkstemp's are 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success, flush it to disk and rename it over ``path``.

    For writers that take a file name (SimpleITK, ``torch.save``, a Slicer
    storage node). Readers see the old file or the new one, never part of one:
    if the block raises, ``path`` is untouched and the temporary file is removed.
    The new file keeps the old one's permissions, else gets the umask's.

    Args:
        path: the file to (re)place; its folder is created when missing.
        suffix: the temporary file's ending; writers that choose a format by
            extension need the real one (e.g. ``".nii.gz"``).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_writer(target) as temporary:
        ...     _ = temporary.write_text("written whole or not at all")
        >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
        ('written whole or not at all', ['notes.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # After the writer: one that replaces the file rather than truncating it drops the mode.
        os.chmod(temporary, _new_file_mode(path))
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as temporary:
        temporary.write_bytes(payload)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (NaN and infinities are refused, not written)."""
    atomic_write_bytes(path, json.dumps(data, indent=1, allow_nan=False, default=str).encode("utf-8"))
