"""One case's scores as a reviewer sees them, ``OUT/cases/<case_id>.json``, read by :mod:`auvcore.results`.

The file is read and validated by :class:`auvcore.results.CaseRecord` (the
core's one reader); this view keeps what the review faces (the Slicer module and
``auv review``) show, with NaN where the file has no value so the colours and
tables need no None checks: per class its label value, name, S, U = 1 - S, the
rows it used and, where S is undefined, why.

Example:
    >>> result = case_result_from_dict({"case_id": "c1", "status": "ok", "auv": 0.25, "S": 1.5,
    ...     "classes": [{"id": 1, "name": "liver", "S": 0.75, "U": 0.25, "rows": 12, "missing_reason": None},
    ...                 {"id": 2, "name": "spleen", "S": None, "U": None, "rows": 1,
    ...                  "missing_reason": "fewer than 2 slices hold the class"}]}, "c1.json")
    >>> [(c.name, c.uncertainty) for c in result.scored_classes]
    [('liver', 0.25)]
    >>> result.classes[1].missing_reason
    'fewer than 2 slices hold the class'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..results import CaseRecord, ResultsFolder, read_case_record
from ..results.case_record import NO_SCORE


@dataclass(frozen=True)
class ClassScore:
    """One class of a scored case; ``S``/``uncertainty`` are NaN where S is undefined."""

    label_value: int
    name: str
    S: float
    uncertainty: float
    rows: int
    missing_reason: str | None

    @property
    def scored(self) -> bool:
        return not math.isnan(self.S)


@dataclass(frozen=True)
class CaseResult:
    """A case's scores: ``auv`` is its AUV in its cohort (NaN for a failed case)."""

    case_id: str
    status: str
    error: str
    auv: float
    S: float
    classes: tuple[ClassScore, ...]
    image: str
    label: str
    backbone: str
    mode: str
    #: The extra scorers' class values (``auv score --scorers``): scorer -> class name -> value.
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The case file as read (:class:`auvcore.results.CaseRecord`), for what is shown on demand (per-slice values).
    record: CaseRecord | None = field(default=None, repr=False, compare=False)

    @property
    def scored_classes(self) -> tuple[ClassScore, ...]:
        return tuple(c for c in self.classes if c.scored)

    def class_by_label(self, label_value: int) -> ClassScore | None:
        return next((c for c in self.classes if c.label_value == label_value), None)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def case_result_from_record(record: CaseRecord) -> CaseResult:
    """The review's view of a case record of :mod:`auvcore.results` (NaN where the file has no value)."""
    classes = tuple(ClassScore(c.id, c.name, _number(c.S), _number(c.U), c.rows,
                               c.missing_reason or (NO_SCORE if c.S is None else None)) for c in record.classes)
    return CaseResult(
        case_id=record.case_id, status=record.status, error=record.error or "", auv=_number(record.auv),
        S=_number(record.S), classes=classes, image=record.image, label=record.label or "", backbone=record.backbone,
        mode=record.mode, scores={name: {k: _number(v) for k, v in entry.classes.items()}
                                  for name, entry in record.scores.items()},
        record=record)


def case_result_from_dict(data: dict, source: str | Path = "<case>") -> CaseResult:
    """A :class:`CaseResult` from the parsed JSON; ``source`` names the file in errors."""
    return case_result_from_record(CaseRecord.from_dict(data, source))


def load_case_result(path: str | Path) -> CaseResult:
    """Read ``OUT/cases/<case_id>.json``; a missing, unreadable or foreign file is an InputError."""
    return case_result_from_record(read_case_record(path))


def case_result_path(results_folder: str | Path, case_id: str) -> Path:
    """Where ``auv score`` puts a case's JSON inside its output folder (ids made safe as file names)."""
    return ResultsFolder(Path(results_folder)).case_json(case_id)
