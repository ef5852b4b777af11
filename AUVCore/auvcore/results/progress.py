"""The machine-readable ``PROGRESS`` lines of ``auv score`` and ``auv train``: one writer, one parser.

Two shapes exist::

    PROGRESS case=3/20 id=case_003 status=ok
    PROGRESS epoch=2/50 step=120/250 loss=0.431200 dice=0.8100

Any other line is ordinary log text. Parsing is strict about the shape of the
fields it knows and ignores extra ``key=value`` fields, so a writer can add
fields without breaking a reader (the Slicer module).

Example:
    >>> format_case_progress(3, 20, "liver 7", "cached")
    'PROGRESS case=3/20 id=liver_7 status=cached'
    >>> parse_progress_line("PROGRESS case=3/20 id=liver_7 status=cached")
    CaseProgress(index=3, total=20, case_id='liver_7', status='cached')
    >>> parse_progress_line(format_epoch_progress(2, 50, 120, 250, 0.43, 0.81)).fraction
    0.04
    >>> parse_progress_line("scoring liver_7") is None
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from .layout import safe_file_name

PREFIX = "PROGRESS "


@dataclass(frozen=True)
class CaseProgress:
    """One case of a scoring run finished (``status`` is ok, cached or error)."""

    index: int
    total: int
    case_id: str
    status: str

    @property
    def fraction(self) -> float:
        """Share of the run done, in [0, 1]."""
        return self.index / self.total if self.total else 0.0

    def describe(self) -> str:
        return f"case {self.index}/{self.total}: {self.case_id} ({self.status})"


@dataclass(frozen=True)
class EpochProgress:
    """A training step report; ``loss``/``dice`` are NaN when the line does not carry them."""

    epoch: int
    epochs: int
    step: str
    loss: float
    dice: float

    @property
    def fraction(self) -> float:
        """Share of the run done, ``e / E`` (the trainer numbers epochs from 1)."""
        return self.epoch / self.epochs if self.epochs else 0.0

    def describe(self) -> str:
        return f"epoch {self.epoch}/{self.epochs} step {self.step}: loss {self.loss:.4g}, dice {self.dice:.3g}"


Progress = CaseProgress | EpochProgress


def format_case_progress(index: int, total: int, case_id: str, status: str) -> str:
    """The line for case ``index`` of ``total`` (ids made safe: no spaces inside a field)."""
    return f"{PREFIX}case={index}/{total} id={safe_file_name(case_id)} status={status}"


def format_epoch_progress(epoch: int, epochs: int, step: int, steps: int, loss: float, dice: float | None,
                          status: str | None = None) -> str:
    """The line for a training step; ``dice`` is None (``nan``) before the first validation."""
    dice_text = "nan" if dice is None or math.isnan(dice) else f"{dice:.4f}"
    tail = f" status={status}" if status else ""
    return f"{PREFIX}epoch={epoch}/{epochs} step={step}/{steps} loss={loss:.6f} dice={dice_text}{tail}"


def _fields(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for token in line[len(PREFIX):].split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def _ratio(text: str) -> tuple[int, int] | None:
    done, sep, total = text.partition("/")
    if not sep or not done.isdigit() or not total.isdigit():
        return None
    return int(done), int(total)


def _number(text: str | None) -> float:
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan


def parse_progress_line(line: str) -> Progress | None:
    """The progress a line reports, or ``None`` for ordinary log text and malformed lines."""
    line = line.strip()
    if not line.startswith(PREFIX):
        return None
    fields = _fields(line)
    if "case" in fields:
        ratio = _ratio(fields["case"])
        if ratio is None or "id" not in fields:
            return None
        return CaseProgress(ratio[0], ratio[1], fields["id"], fields.get("status", "ok"))
    if "epoch" in fields:
        ratio = _ratio(fields["epoch"])
        if ratio is None:
            return None
        return EpochProgress(ratio[0], ratio[1], fields.get("step", ""), _number(fields.get("loss")), _number(fields.get("dice")))
    return None
