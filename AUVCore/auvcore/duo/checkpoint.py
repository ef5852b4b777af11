"""Atomic checkpoint files, read back with ``torch.load(..., weights_only=True)``.

A checkpoint is a dict of tensors, state dicts and JSON-like values only, so it
never needs unpickling of arbitrary objects. It is written with
:func:`auvcore.files.atomic_writer`: a run killed mid-write leaves the previous
checkpoint intact.

Example:
    >>> import tempfile, torch
    >>> path = Path(tempfile.mkdtemp()) / "c.pt"
    >>> save_checkpoint({"epoch": 3, "model": {"w": torch.ones(2)}, "plan": {}}, path)
    >>> load_checkpoint(path)["epoch"]
    3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..files import atomic_writer

#: Full training state, rewritten every epoch (and on a clean stop).
LATEST = "checkpoint_latest.pt"
#: Weights + plan for ``auv predict``, rewritten every epoch.
MODEL = "model.pt"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` atomically to ``path``."""
    with atomic_writer(path) as temporary:
        torch.save(state, temporary)


def training_finished(run: str | Path, epochs: int) -> bool:
    """Whether the run folder ``run`` holds a model trained for all ``epochs`` epochs.

    ``model.pt`` is rewritten every epoch and on a clean stop too, so only the
    checkpoint's epoch tells a finished run from a stopped one.
    """
    run = Path(run)
    return (run / MODEL).is_file() and (run / LATEST).is_file() and int(load_checkpoint(run / LATEST)["epoch"]) >= epochs


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; InputError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, foreign or unsafe pickle: all unusable here
        raise InputError(path, f"is not a readable auvcore checkpoint ({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state or "plan" not in state:
        raise InputError(path, "is not an auvcore checkpoint (no model weights and plan)")
    return state
