"""The retained cohort's exports: nnU-Net's ``splits_final.json`` and a manifest ``auv score`` reads back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..files import atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

#: nnU-Net's default number of folds and seed for its cross-validation split.
NNUNET_FOLDS = 5
NNUNET_SEED = 12345


def crossval_splits(case_ids: Sequence[str], folds: int = NNUNET_FOLDS, seed: int = NNUNET_SEED,
                    groups: Mapping[str, str] | None = None) -> list[dict[str, list[str]]]:
    """nnU-Net's cross-validation split: K folds over the sorted ids, shuffled with ``seed``.

    The same split as nnU-Net's own ``generate_crossval_split`` (scikit-learn
    ``KFold(shuffle=True, random_state=seed)`` over the sorted ids): the first
    ``n % folds`` validation folds hold one case more; train lists are sorted,
    validation lists in shuffled order, as nnU-Net writes them. With fewer cases than
    folds there is one fold per case (nnU-Net trains a random 80:20 split for
    a fold number the file lacks; :func:`write_splits_final`'s caller says so).

    ``groups``: case id -> a key shared by cases that must stay in one fold (two labelings of one scan, by the
    image's content hash). The folds are then drawn over the groups, in the order of their first case id, the
    same way; without shared keys the split is nnU-Net's own.

    Example:
        >>> splits = crossval_splits([f"case{i}" for i in range(7)])
        >>> [len(s["val"]) for s in splits], sorted(sum((s["val"] for s in splits), []))[:2]
        ([2, 2, 1, 1, 1], ['case0', 'case1'])
        >>> together = crossval_splits(["a", "b", "c", "d"], 2, groups={"a": "x", "b": "x", "c": "y", "d": "z"})
        >>> [sorted(s["val"]) for s in together]  # a and b share an image: never one in train and one in val
        [['a', 'b', 'c'], ['d']]

    Raises:
        ValueError: fewer than 2 cases (or groups), repeated ids, or fewer than 2 folds.
    """
    ids = np.sort(np.asarray([str(c) for c in case_ids], dtype=object))
    if len(set(ids)) != len(ids):
        raise ValueError("case ids repeat; each case can be in one fold only")
    keys = [str((groups or {}).get(case_id, case_id)) for case_id in ids]
    members: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    units = list(members.values())  # in the order of their first (sorted) case id
    if len(units) < 2:
        raise ValueError(f"a cross-validation split needs at least 2 cases{' of different images' if groups else ''}, got {len(units)}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    folds = min(folds, len(units))
    order = np.arange(len(units))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(folds, len(units) // folds)
    sizes[: len(units) % folds] += 1
    splits = []
    for stop, size in zip(np.cumsum(sizes), sizes):
        val = [index for unit in order[stop - size : stop] for index in units[unit]]
        train = np.setdiff1d(np.arange(len(ids)), val)  # sorted, as KFold gives it
        splits.append({"train": ids[train].tolist(), "val": ids[val].tolist()})
    return splits


def write_splits_final(case_ids: Sequence[str], path: str | Path, folds: int = NNUNET_FOLDS,
                       seed: int = NNUNET_SEED, groups: Mapping[str, str] | None = None) -> list[dict[str, list[str]]]:
    """Write :func:`crossval_splits` as nnU-Net's ``splits_final.json`` (atomically) and return it."""
    splits = crossval_splits(case_ids, folds, seed, groups)
    atomic_write_bytes(path, (json.dumps(splits, indent=4) + "\n").encode("utf-8"))
    return splits


#: Columns of the retained manifest, in order (those the table given has; ``label_names`` from the case records).
MANIFEST_COLUMNS = ("case_id", "image", "label", "label_names", "auv", "S")


def write_manifest(results_or_cases: pd.DataFrame | Sequence[str], path: str | Path) -> None:
    """Write a manifest CSV (atomically): the rows of a results table, or bare case ids.

    A results table keeps its case_id, image, label, label_names, auv and S
    columns, so the file is a manifest ``auv score`` reads back (with the class
    names the cases were scored with); a list of ids gives only case_id.
    """
    import pandas as pd

    if isinstance(results_or_cases, pd.DataFrame):
        table = results_or_cases[[c for c in MANIFEST_COLUMNS if c in results_or_cases.columns]]
    else:
        table = pd.DataFrame({"case_id": [str(c) for c in results_or_cases]})
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
