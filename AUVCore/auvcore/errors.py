"""Errors for bad input: each names the file and says what is wrong with it."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A file (or folder) the user gave cannot be used.

    Example:
        >>> str(InputError("case1.nii.gz", "holds 3 NaN voxels"))
        'case1.nii.gz: holds 3 NaN voxels'
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
