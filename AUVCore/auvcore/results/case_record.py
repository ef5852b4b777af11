"""One scored case, ``OUT/cases/<case>.json``: the one reader and writer of the case file.

The core writes it, the report, the audit, the curation commands and the
Slicer module read it, all through :class:`CaseRecord`. Numbers that are
undefined (a class on fewer than two slices, a failed case) are ``None``, never
NaN: the file is strict JSON. Keys this version does not know are kept and
written back, so a newer writer's fields are never lost by an older reader.

Schema versions: files without ``"schema"`` are version 1, which is what this
module writes (the field was added without changing any other).

Example:
    >>> record = CaseRecord.from_dict({"case_id": "c1", "status": "ok", "auv": 0.25, "S": 0.75,
    ...     "classes": [{"id": 1, "name": "liver", "S": 0.75, "rows": 12, "missing_reason": None},
    ...                 {"id": 2, "name": "spleen", "S": None, "rows": 1,
    ...                  "missing_reason": "fewer than 2 slices hold the class"}]})
    >>> [(c.name, c.U) for c in record.scored_classes]
    [('liver', 0.25)]
    >>> CaseRecord.from_dict(record.to_dict()) == record
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..files import write_json_atomic

SCHEMA_VERSION = 1
#: Why a class has no value when the file gives none.
NO_SCORE = "no score reported"


def json_number(value: Any) -> float | None:
    """A finite float, or None for None, NaN and infinities (strict JSON has no NaN).

    Example:
        >>> json_number(float("nan")), json_number(2)
        (None, 2.0)
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _optional_number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return None if value is None else float(value)


@dataclass(frozen=True)
class ClassRecord:
    """One class of a case: S(Z|c) (None where undefined, with the reason), the slices it used and its voxels.

    ``voxels`` is None in files written before it was recorded.
    """

    id: int
    name: str
    S: float | None
    rows: int
    missing_reason: str | None = None
    voxels: int | None = None

    @property
    def U(self) -> float | None:
        """The displayed uncertainty U(c) = 1 - S(Z|c)."""
        return None if self.S is None else 1.0 - self.S

    @property
    def scored(self) -> bool:
        return self.S is not None

    def to_dict(self) -> dict[str, Any]:
        data = {"id": self.id, "name": self.name, "S": self.S, "U": self.U, "rows": self.rows, "missing_reason": self.missing_reason}
        if self.voxels is not None:
            data["voxels"] = self.voxels
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ClassRecord":
        s = _optional_number(data, "S")
        reason = data.get("missing_reason")
        voxels = data.get("voxels")
        return cls(int(data["id"]), str(data["name"]), s, int(data.get("rows", 0)),
                   None if reason is None and s is not None else str(reason or NO_SCORE), None if voxels is None else int(voxels))


@dataclass(frozen=True)
class ScorerValues:
    """One extra scorer's values in a case: per class, and per slice where the scorer has them."""

    classes: dict[str, float | None] = field(default_factory=dict)
    slices: dict[str, list[float | None]] | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"classes": dict(self.classes)}
        if self.slices is not None:
            data["slices"] = {name: list(values) for name, values in self.slices.items()}
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ScorerValues":
        slices = data.get("slices")
        return cls(
            {str(k): _optional_number(data["classes"], k) for k in data.get("classes") or {}},
            None if slices is None else {str(k): [None if v is None else float(v) for v in row] for k, row in slices.items()},
            data.get("reason") or None,
        )


#: The keys in the order the file lists them; those after ``classes`` marked optional are left out when empty.
_ORDER = ("case_id", "image", "label", "label_names", "image_sha256", "status", "error", "auv", "S", "classes", "absent_classes", "modality", "backbone",
          "mode", "settings", "versions", "runtime", "timings", "slices_encoded", "geometry", "cache_key", "scores",
          "slice_centres_lps", "structure_centres_lps", "case_scores")
_OPTIONAL = frozenset({"label_names", "image_sha256", "absent_classes", "modality", "runtime", "timings", "slices_encoded", "geometry", "scores",
                       "slice_centres_lps", "structure_centres_lps", "case_scores"})


@dataclass(frozen=True)
class CaseRecord:
    """A scored (or failed) case as ``auv score`` records it.

    Attributes:
        label_names: the dataset.json-style file the class names came from (None without one, and in files
            written before it was recorded).
        image_sha256: the image file's content hash (cases that share a scan share it); None in older files.
        status: ``ok`` or ``error`` (then ``error`` says why, naming the file).
        auv: the case's AUV in its cohort (or on a saved reference); None until
            the cohort stage, and for failed cases.
        S: S(Z) = sum over classes of S(Z|c); None when no class has one.
        scores: the extra scorers' class (and slice) values, by scorer.
        case_scores: the extra scorers' case scores in [0, 1] over the cohort.
        slice_centres_lps: the LPS centre of every slice (axis 0 of the
            LPS-oriented volume), to point a viewer at a structure's worst slice.
        structure_centres_lps: per class, ``[slice, r, a, s]`` for each slice holding it: the LPS centre of
            its voxels there (:func:`auvcore.imaging.structure_centres`); None in files written before.
        runtime: what ran the model: ``{"name", "version", "precision"}``
            (:mod:`auvcore.backends.runtimes`); None in files written before.
        extra: keys of the file this version does not know, kept as they are.
    """

    case_id: str
    image: str
    label: str | None
    status: str = "ok"
    label_names: str | None = None
    image_sha256: str | None = None
    error: str | None = None
    auv: float | None = None
    S: float | None = None
    classes: tuple[ClassRecord, ...] = ()
    absent_classes: tuple[str, ...] | None = None
    modality: str | None = None
    backbone: str = ""
    mode: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, str] | None = None
    timings: dict[str, float] | None = None
    slices_encoded: int | None = None
    geometry: dict[str, Any] | None = None
    cache_key: str | None = None
    scores: dict[str, ScorerValues] = field(default_factory=dict)
    slice_centres_lps: list[list[float]] | None = None
    structure_centres_lps: dict[str, list[list[float]]] | None = None
    case_scores: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def scored_classes(self) -> tuple[ClassRecord, ...]:
        return tuple(c for c in self.classes if c.scored)

    def class_by_id(self, class_id: int) -> ClassRecord | None:
        return next((c for c in self.classes if c.id == class_id), None)

    def class_values(self, scorer: str) -> dict[str, float]:
        """Class name -> the scorer's value (``auv``: S), the defined ones only."""
        if scorer == "auv":
            return {c.name: c.S for c in self.classes if c.S is not None}
        values = self.scores.get(scorer)
        return {} if values is None else {k: v for k, v in values.classes.items() if v is not None}

    def structure_centre(self, class_name: str, slice_index: int) -> list[float] | None:
        """The LPS centre (mm) of the class's voxels on slice ``slice_index``; None where the file does not say.

        Example:
            >>> CaseRecord("c", "i", "l", structure_centres_lps={"liver": [[4, 1.0, 2.0, 3.0]]}).structure_centre("liver", 4)
            [1.0, 2.0, 3.0]
        """
        rows = (self.structure_centres_lps or {}).get(class_name) or ()
        return next(([float(v) for v in row[1:]] for row in rows if int(row[0]) == slice_index), None)

    def updated(self, **changes: Any) -> "CaseRecord":
        """A copy with some fields changed (records are frozen)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object (``schema`` first, then the keys in their usual order)."""
        values = {
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"},
            "classes": [c.to_dict() for c in self.classes],
            "absent_classes": None if self.absent_classes is None else list(self.absent_classes),
            "scores": {name: entry.to_dict() for name, entry in self.scores.items()},
            "case_scores": dict(self.case_scores),
        }
        data: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for key in _ORDER:
            value = values[key]
            if key in _OPTIONAL and (value is None or value == {}):
                continue
            data[key] = value
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<case>") -> "CaseRecord":
        """Parse a case file's JSON object; InputError naming ``source`` when it is not one."""
        if not isinstance(data, dict) or "case_id" not in data or not isinstance(data.get("classes", []), list):
            raise InputError(source, "is not an `auv score` case file (needs case_id and a classes list)")
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise InputError(source, f"has case-file schema {schema!r}; this auvcore reads schema 1 to {SCHEMA_VERSION}")
        try:
            absent = data.get("absent_classes")
            label = data.get("label")
            return cls(
                case_id=str(data["case_id"]),
                image=str(data.get("image", "")),
                label=None if label in (None, "") else str(label),
                status=str(data.get("status", "ok")),
                label_names=data.get("label_names") or None,
                image_sha256=data.get("image_sha256") or None,
                error=data.get("error") or None,
                auv=_optional_number(data, "auv"),
                S=_optional_number(data, "S"),
                classes=tuple(ClassRecord.from_dict(c) for c in data.get("classes") or ()),
                absent_classes=None if absent is None else tuple(str(name) for name in absent),
                modality=data.get("modality"),
                backbone=str(data.get("backbone", "")),
                mode=str(data.get("mode", "")),
                settings=dict(data.get("settings") or {}),
                versions=dict(data.get("versions") or {}),
                runtime=data.get("runtime"),
                timings=data.get("timings"),
                slices_encoded=data.get("slices_encoded"),
                geometry=data.get("geometry"),
                cache_key=data.get("cache_key"),
                scores={str(name): ScorerValues.from_dict(entry) for name, entry in (data.get("scores") or {}).items()},
                slice_centres_lps=data.get("slice_centres_lps"),
                structure_centres_lps=data.get("structure_centres_lps"),
                case_scores={str(k): _optional_number(data["case_scores"], k) for k in data.get("case_scores") or {}},
                extra={k: v for k, v in data.items() if k not in _ORDER and k != "schema"},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InputError(source, f"is not a case file of `auv score` (missing or malformed {error!r})") from None


def read_case_record(path: str | Path) -> CaseRecord:
    """Read ``OUT/cases/<case>.json``; a missing, unreadable or foreign file is an InputError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "does not exist (was the case scored?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot be read as JSON ({error})") from None
    return CaseRecord.from_dict(data, path)


def write_case_record(path: str | Path, record: CaseRecord) -> None:
    """Write the record atomically (a crash leaves the previous file whole)."""
    write_json_atomic(path, record.to_dict())
