"""The machine-readable ``PROGRESS`` lines of ``auv score`` and ``auv train``: one writer, one parser.

Two shapes exist::

    PROGRESS case=3/20 id=case_003 status=ok
    PROGRESS epoch=2/50 step=120/250 loss=0.431200 dice=0.8100

Any other line is ordinary log text. Parsing is strict about the shape of the
fields it knows and ignores extra ``key=value`` fields, so a writer can add
fields without breaking a reader (the Slicer module).

``auv train --engine nnunet`` runs ``nnUNetv2_train``, whose log says where it is in
lines of its own; :class:`NnUNetProgressReader` follows them (an epoch's number, its
train loss, its pseudo Dice per class, its time) and reports each finished epoch as
the same :class:`EpochProgress`, so one progress bar shows either trainer.

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
import re
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


#: nnU-Net's default number of epochs (``nnUNetTrainer.num_epochs``), for a trainer that does not say its own.
NNUNET_EPOCHS = 1000
_NNUNET_PLAN = re.compile(r"AUV nnU-Net: (\d+) epochs of (\d+) iterations")
_NNUNET_EPOCH = re.compile(r"(?:^|: )Epoch (\d+)$")
_NNUNET_LOSS = re.compile(r"(?:^|: )train_loss (\S+)$")
_NNUNET_DICE = re.compile(r"(?:^|: )Pseudo dice \[(.*)\]$")
_NNUNET_EPOCH_TIME = re.compile(r"(?:^|: )Epoch time: \S+ s$")
#: A number in a printed list, also inside ``np.float32(0.5)``; the digits of ``float32`` are not one.
_NUMBER = re.compile(r"(?<![\w.])(?:nan|[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)")


def format_nnunet_plan(epochs: int, iterations: int) -> str:
    """The line the AUV nnU-Net trainers log when training starts, so a reader knows the number of epochs.

    Example:
        >>> format_nnunet_plan(100, 250)
        'AUV nnU-Net: 100 epochs of 250 iterations'
    """
    return f"AUV nnU-Net: {epochs} epochs of {iterations} iterations"


class NnUNetProgressReader:
    """Progress from ``nnUNetv2_train``'s log lines, and from ``PROGRESS`` lines as :func:`parse_progress_line` reads them.

    nnU-Net numbers epochs from 0 and logs, per epoch, ``Epoch N``, ``train_loss L``, ``Pseudo dice [...]``
    and last ``Epoch time: T s`` (each after a time stamp); the reader reports epoch N + 1 of ``epochs``
    finished at that last line, with the train loss and the mean pseudo Dice. ``epochs`` is nnU-Net's default
    until the AUV trainers' plan line (:func:`format_nnunet_plan`) says otherwise.

    Example:
        >>> reader = NnUNetProgressReader()
        >>> lines = ["2026-01-02 10:00:00.000001: AUV nnU-Net: 100 epochs of 250 iterations",
        ...          "2026-01-02 10:00:01.000001: Epoch 4", "2026-01-02 10:03:00.000001: train_loss -0.4321",
        ...          "2026-01-02 10:03:01.000001: Pseudo dice [np.float32(0.8), np.float32(0.6), np.float32(nan)]",
        ...          "2026-01-02 10:03:01.000002: Epoch time: 180.12 s"]
        >>> [reader(line) for line in lines][-1]
        EpochProgress(epoch=5, epochs=100, step='250/250', loss=-0.4321, dice=0.7)
    """

    def __init__(self, epochs: int = NNUNET_EPOCHS) -> None:
        self.epochs = epochs
        self.iterations: int | None = None
        self._epoch: int | None = None
        self._loss = math.nan
        self._dice = math.nan

    def __call__(self, line: str) -> Progress | None:
        line = line.strip()
        progress = parse_progress_line(line)
        if progress is not None:
            return progress
        if match := _NNUNET_PLAN.search(line):
            self.epochs, self.iterations = int(match.group(1)), int(match.group(2))
        elif match := _NNUNET_EPOCH.search(line):
            self._epoch, self._loss, self._dice = int(match.group(1)), math.nan, math.nan
        elif match := _NNUNET_LOSS.search(line):
            self._loss = _number(match.group(1))
        elif match := _NNUNET_DICE.search(line):
            values = [float(v) for v in _NUMBER.findall(match.group(1))]
            finite = [v for v in values if math.isfinite(v)]
            self._dice = sum(finite) / len(finite) if finite else math.nan
        elif _NNUNET_EPOCH_TIME.search(line) and self._epoch is not None:
            step = f"{self.iterations}/{self.iterations}" if self.iterations else ""
            return EpochProgress(self._epoch + 1, max(self.epochs, self._epoch + 1), step, self._loss, self._dice)
        return None
