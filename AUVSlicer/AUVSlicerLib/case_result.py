"""Read one case's scores, ``OUT/cases/<case_id>.json`` as ``auv score`` writes it.

Only the fields the module shows are kept: per class its label value, name,
S, U = 1 - S, the rows it used and, where S is undefined, why.

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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auvcore.errors import InputError


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
    #: The case file as read, for what the module shows on demand (e.g. per-slice values).
    record: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def scored_classes(self) -> tuple[ClassScore, ...]:
        return tuple(c for c in self.classes if c.scored)

    def class_by_label(self, label_value: int) -> ClassScore | None:
        return next((c for c in self.classes if c.label_value == label_value), None)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _class_score(entry: dict, source: str) -> ClassScore:
    try:
        s = _number(entry.get("S"))
        u = _number(entry["U"]) if entry.get("U") is not None else (1.0 - s if not math.isnan(s) else math.nan)
        reason = entry.get("missing_reason")
        if math.isnan(s) and not reason:
            reason = "no score reported"
        return ClassScore(int(entry["id"]), str(entry["name"]), s, u, int(entry.get("rows", 0)), reason)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(source, f"a class entry is malformed ({error!r}): {entry!r}") from error


def case_result_from_dict(data: dict, source: str | Path = "<case>") -> CaseResult:
    """A :class:`CaseResult` from the parsed JSON; ``source`` names the file in errors."""
    if not isinstance(data, dict) or "case_id" not in data or not isinstance(data.get("classes", []), list):
        raise InputError(source, "is not an `auv score` case file (needs case_id and a classes list)")
    classes = tuple(_class_score(entry, str(source)) for entry in data.get("classes", []))
    return CaseResult(
        case_id=str(data["case_id"]),
        status=str(data.get("status", "ok")),
        error=str(data.get("error") or ""),
        auv=_number(data.get("auv")),
        S=_number(data.get("S")),
        classes=classes,
        image=str(data.get("image", "")),
        label=str(data.get("label", "")),
        backbone=str(data.get("backbone", "")),
        mode=str(data.get("mode", "")),
        scores={name: {k: _number(v) for k, v in (entry.get("classes") or {}).items()}
                for name, entry in (data.get("scores") or {}).items() if isinstance(entry, dict)},
        record=data,
    )


def load_case_result(path: str | Path) -> CaseResult:
    """Read ``OUT/cases/<case_id>.json``; a missing, unreadable or foreign file is an InputError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(path, "does not exist (was the case scored?)") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot be read as JSON ({error})") from error
    return case_result_from_dict(data, path)


def case_result_path(results_folder: str | Path, case_id: str) -> Path:
    """Where ``auv score`` puts a case's JSON inside its output folder (ids made safe as file names)."""
    from auvcore.results import ResultsFolder

    return ResultsFolder(Path(results_folder)).case_json(case_id)
