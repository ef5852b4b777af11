"""The retained cohort's exports: nnU-Net's ``splits_final.json`` and a manifest ``auv score`` reads back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..files import atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

#: nnU-Net's default number of folds and seed for its cross-validation split.
NNUNET_FOLDS = 5
NNUNET_SEED = 12345


def crossval_splits(case_ids: Sequence[str], folds: int = NNUNET_FOLDS, seed: int = NNUNET_SEED) -> list[dict[str, list[str]]]:
    """nnU-Net's cross-validation split: K folds over the sorted ids, shuffled with ``seed``.

    The same split as nnU-Net's own ``generate_crossval_split`` (scikit-learn
    ``KFold(shuffle=True, random_state=seed)`` over the sorted ids): the first
    ``n % folds`` validation folds hold one case more; train lists are sorted,
    validation lists in shuffled order, as nnU-Net writes them. With fewer cases than
    folds there is one fold per case (nnU-Net trains a random 80:20 split for
    a fold number the file lacks).

    Example:
        >>> splits = crossval_splits([f"case{i}" for i in range(7)])
        >>> [len(s["val"]) for s in splits], sorted(sum((s["val"] for s in splits), []))[:2]
        ([2, 2, 1, 1, 1], ['case0', 'case1'])

    Raises:
        ValueError: fewer than 2 cases, repeated ids, or fewer than 2 folds.
    """
    ids = np.sort(np.asarray([str(c) for c in case_ids], dtype=object))
    if len(set(ids)) != len(ids):
        raise ValueError("case ids repeat; each case can be in one fold only")
    if len(ids) < 2:
        raise ValueError(f"a cross-validation split needs at least 2 cases, got {len(ids)}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    folds = min(folds, len(ids))
    order = np.arange(len(ids))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(folds, len(ids) // folds)
    sizes[: len(ids) % folds] += 1
    splits = []
    for stop, size in zip(np.cumsum(sizes), sizes):
        val = order[stop - size : stop]
        train = np.setdiff1d(np.arange(len(ids)), val)  # sorted, as KFold gives it
        splits.append({"train": ids[train].tolist(), "val": ids[val].tolist()})
    return splits


def write_splits_final(case_ids: Sequence[str], path: str | Path, folds: int = NNUNET_FOLDS,
                       seed: int = NNUNET_SEED) -> list[dict[str, list[str]]]:
    """Write :func:`crossval_splits` as nnU-Net's ``splits_final.json`` (atomically) and return it."""
    splits = crossval_splits(case_ids, folds, seed)
    atomic_write_bytes(path, (json.dumps(splits, indent=4) + "\n").encode("utf-8"))
    return splits


#: Columns of the retained manifest, in order (those the results table has).
MANIFEST_COLUMNS = ("case_id", "image", "label", "auv", "S")


def write_manifest(results_or_cases: pd.DataFrame | Sequence[str], path: str | Path) -> None:
    """Write a manifest CSV (atomically): the rows of a results table, or bare case ids.

    A results table keeps its case_id, image, label, auv and S columns, so the
    file is a manifest ``auv score`` reads back; a list of ids gives only case_id.
    """
    import pandas as pd

    if isinstance(results_or_cases, pd.DataFrame):
        table = results_or_cases[[c for c in MANIFEST_COLUMNS if c in results_or_cases.columns]]
    else:
        table = pd.DataFrame({"case_id": [str(c) for c in results_or_cases]})
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
