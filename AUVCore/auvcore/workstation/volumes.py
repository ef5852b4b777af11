"""Volumes read ahead: the next cases of the queue are read from disk while the reviewer looks at the current one.

Reading a case (a DICOM series, a large NIfTI) takes most of the time of moving
to it; SimpleITK reads without holding Python's lock, so one background thread
reads the cases a reviewer is likely to open next and the move finds them in
memory. A file is known by its path, size and modification time: one changed
since (a correction saved again) is read anew.

Example:
    >>> import tempfile, numpy as np, SimpleITK as sitk
    >>> path = Path(tempfile.mkdtemp()) / "v.nii.gz"
    >>> sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), np.int16)), str(path))
    >>> volumes = VolumeCache()
    >>> volumes.prefetch([path])
    >>> volumes.read(path).GetSize()
    (4, 3, 2)
    >>> volumes.close()
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import SimpleITK as sitk

from ..imaging import read_image

#: Volumes kept in memory (the current case's two, and the next cases').
CAPACITY = 8


class VolumeCache:
    """Reads volumes in one background thread and keeps the last :data:`CAPACITY` of them."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="auv-review-read")
        self._read: OrderedDict[tuple[str, int, int], Future[sitk.Image]] = OrderedDict()

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        status = path.stat()
        return str(path.resolve()), status.st_size, status.st_mtime_ns

    def _submit(self, path: Path) -> Future[sitk.Image]:
        key = self._key(path)
        future = self._read.pop(key, None) or self._pool.submit(read_image, path)
        self._read[key] = future
        while len(self._read) > self.capacity:
            self._read.popitem(last=False)[1].cancel()
        return future

    def prefetch(self, paths: Iterable[str | Path]) -> None:
        """Start reading ``paths`` (those that exist) unless they are read already."""
        for path in paths:
            if Path(path).exists():
                self._submit(Path(path))

    def read(self, path: str | Path) -> sitk.Image:
        """The volume at ``path``: from memory when it was read ahead, else read now.

        Raises:
            InputError: naming the file, for a missing or unreadable one (:func:`auvcore.imaging.read_image`).
        """
        path = Path(path)
        if not path.exists():
            return read_image(path)  # its error names the file
        return self._submit(path).result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
