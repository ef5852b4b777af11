"""Out-of-fold class probabilities: the folder ``auv oof`` writes and the ``cleanlab`` scorer reads.

Each case's probabilities come from a model that never saw the case: the
cohort's cases are dealt into K folds and fold k's cases are predicted by the
model trained on the other folds (:mod:`auvcore.duo.oof` trains them). The folder:

* ``oof.json``: the folds, the seed that dealt them, the training settings and,
  per case, its fold, its probability file and the classes the fold's model knows;
* ``probabilities/<case_id>.npz``: ``probabilities`` (C, D, H, W), float16, one
  channel per class in ``classes``, on the image's own voxels in the LPS
  orientation of :func:`auvcore.imaging.load_case` (slices along axis 0), with that
  grid's ``spacing``, ``origin`` and ``direction`` (SimpleITK order) to check it against.

Torch-free: reading the folder needs NumPy only.

Example:
    >>> deal_folds(["a", "b", "c", "d", "e"], folds=2, seed=0)
    {'a': 1, 'b': 0, 'c': 0, 'd': 0, 'e': 1}
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .files import atomic_write_bytes, write_json_atomic
from .imaging import GEOMETRY_TOLERANCE, Geometry
from .results.layout import safe_file_name

OOF_MANIFEST = "oof.json"
PROBABILITIES_DIR = "probabilities"
FORMAT = 1


def deal_folds(case_ids: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    """Each case's fold: a seeded permutation of the cases dealt round-robin into ``folds`` folds."""
    if folds < 2:
        raise ValueError(f"out-of-fold probabilities need at least 2 folds, got {folds}")
    if len(case_ids) < folds:
        raise ValueError(f"{len(case_ids)} cases cannot fill {folds} folds")
    order = np.random.default_rng(seed).permutation(len(case_ids))
    fold_of = {case_ids[index]: position % folds for position, index in enumerate(order)}
    return {case_id: fold_of[case_id] for case_id in case_ids}


@dataclass(frozen=True)
class CaseProbabilities:
    """One case's out-of-fold probabilities and the LPS grid they lie on."""

    case_id: str
    classes: tuple[str, ...]
    values: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    def check_grid(self, oriented: Geometry, shape: tuple[int, ...], path: str | Path) -> None:
        """InputError naming ``path`` unless the probabilities lie on this (LPS-oriented) image grid."""
        if tuple(self.values.shape[1:]) != tuple(shape):
            raise InputError(path, f"holds probabilities of shape {self.values.shape[1:]}, but case {self.case_id!r} "
                             f"has {tuple(shape)} voxels (was it made for another version of the image?)")
        for what, mine, theirs in (("spacing", self.spacing, oriented.spacing), ("origin", self.origin, oriented.origin),
                                   ("direction", self.direction, oriented.direction)):
            if not np.allclose(mine, theirs, atol=GEOMETRY_TOLERANCE, rtol=GEOMETRY_TOLERANCE):
                raise InputError(path, f"{what} {tuple(round(v, 4) for v in mine)} differs from case {self.case_id!r}'s image "
                                 f"({tuple(round(v, 4) for v in theirs)})")


def write_case_probabilities(folder: str | Path, case_id: str, classes: Sequence[str], values: np.ndarray, grid: Geometry) -> Path:
    """Write one case's probabilities (C, D, H, W) on its LPS ``grid`` atomically; returns the file."""
    if values.ndim != 4 or values.shape[0] != len(classes):
        raise ValueError(f"probabilities must be (classes, D, H, W) with {len(classes)} classes, got {values.shape}")
    path = Path(folder) / PROBABILITIES_DIR / f"{safe_file_name(case_id)}.npz"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, probabilities=values.astype(np.float16), classes=np.array(list(classes), dtype=str),
                        spacing=np.array(grid.spacing), origin=np.array(grid.origin), direction=np.array(grid.direction))
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_oof_manifest(folder: str | Path, folds: int, seed: int, fold_of: dict[str, int], classes: dict[str, Sequence[str]],
                       training: dict[str, Any]) -> Path:
    """Write ``oof.json``: per case its fold, its probability file and its model's classes."""
    cases = {case_id: {"fold": fold, "file": f"{PROBABILITIES_DIR}/{safe_file_name(case_id)}.npz", "classes": list(classes[case_id])}
             for case_id, fold in fold_of.items()}
    path = Path(folder) / OOF_MANIFEST
    write_json_atomic(path, {"format": FORMAT, "folds": folds, "seed": seed, "training": training, "cases": cases})
    return path


@dataclass(frozen=True)
class OofFolder:
    """An ``auv oof`` folder, its manifest read and checked."""

    root: Path
    folds: int
    cases: dict[str, dict[str, Any]]

    @classmethod
    def open(cls, folder: str | Path) -> "OofFolder":
        """Read ``FOLDER/oof.json`` (InputError naming it when missing or malformed)."""
        root = Path(folder)
        manifest = root / OOF_MANIFEST
        if not manifest.is_file():
            raise InputError(manifest, "does not exist: give a folder written by `auv oof`")
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError as error:
            raise InputError(manifest, f"is not valid JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("cases"), dict):
            raise InputError(manifest, f"is not an out-of-fold manifest of format {FORMAT}")
        return cls(root, int(data["folds"]), data["cases"])

    def load(self, case_id: str) -> CaseProbabilities | None:
        """The case's probabilities, or None when the folder has none for it."""
        entry = self.cases.get(case_id)
        if entry is None:
            return None
        path = self.root / entry["file"]
        try:
            with np.load(path, allow_pickle=False) as stored:
                values = stored["probabilities"].astype(np.float32)
                classes = tuple(str(c) for c in stored["classes"])
                grid = [tuple(float(v) for v in stored[key]) for key in ("spacing", "origin", "direction")]
        except FileNotFoundError:
            raise InputError(path, f"is missing: the out-of-fold probabilities of case {case_id!r} (is `auv oof` unfinished?)") from None
        except (OSError, ValueError, KeyError) as error:
            raise InputError(path, f"is not a probability file of `auv oof` ({error})") from None
        if values.ndim != 4 or values.shape[0] != len(classes):
            raise InputError(path, f"holds probabilities of shape {values.shape} for {len(classes)} classes")
        return CaseProbabilities(case_id, classes, values, *grid)
