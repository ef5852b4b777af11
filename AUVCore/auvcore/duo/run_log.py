"""What a training run reports: PROGRESS lines on stdout and one JSON line per epoch in ``metrics.jsonl``.

Example:
    >>> print_progress(3, 100, 17, 250, 0.812345, 0.4312)
    PROGRESS epoch=3/100 step=17/250 loss=0.812345 dice=0.4312
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..files import atomic_write_bytes
from ..results.progress import format_epoch_progress

#: The run folder's log of finished epochs.
METRICS = "metrics.jsonl"


def print_progress(epoch: int, epochs: int, step: int, steps: int, loss: float, dice: float | None, status: str | None = None) -> None:
    """One PROGRESS line (the mean validation Dice as ``nan`` until there is one); ``status`` ends a run."""
    print(format_epoch_progress(epoch, epochs, step, steps, loss, dice, status), flush=True)


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Add one finished epoch's line, on disk before the next epoch starts."""
    with path.open("a") as stream:
        stream.write(json.dumps(record) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def truncate_metrics(path: Path, epochs_done: int) -> None:
    """Drop lines of epochs after the checkpoint (a run killed after logging, before saving)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epochs_done]
    atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode("utf-8"))
