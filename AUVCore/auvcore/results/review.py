"""Reviewers' verdicts on structures, ``review.json`` beside ``exclusions.json``: read and record, never lost.

A verdict says whether one structure (a class) of one case is annotated
``correct``, ``needs_fix`` or is ``unsure``, with an optional note; ``fixed`` is
recorded by saving a correction (:mod:`.corrections`) and names its file. Each
verdict is written the moment it is given: the file is read, changed and
written atomically (:func:`auvcore.files.atomic_write_bytes`) under a lock
beside it, as :mod:`auvcore.curation` does for ``exclusions.json``, so a crash
mid-write leaves the previous file whole and two reviewers of one folder never
overwrite each other's verdicts. Torch-free: ``auv report`` and the Slicer module read it.

The file (format 1, without ``corrections`` and the verdicts' ``reviewer`` and
``correction``, is read as well)::

    {"format": 2,
     "verdicts": [{"case_id": "ct_7", "structure": "liver", "verdict": "fixed", "note": "misses the left lobe tip",
                   "time": "2026-12-02T10:02:11+00:00", "reviewer": "ana", "correction": "corrections/ct_7.nii.gz"}],
     "corrections": [{"case_id": "ct_7", "file": "corrections/ct_7.nii.gz", "sha256": "...", "changes": [...], ...}]}

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "review.json"
    >>> review = record_verdict(target, "ct_7", "liver", "needs_fix", note="misses the left lobe tip")
    >>> load_review(target).get("ct_7", "liver").verdict
    'needs_fix'
    >>> load_review(target).counts()
    {'correct': 0, 'needs_fix': 1, 'unsure': 0, 'fixed': 0}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from ..errors import InputError
from ..files import atomic_write_bytes

if TYPE_CHECKING:
    from .corrections import Correction

#: The verdicts a reviewer gives, in the order the panel shows them.
VERDICTS = ("correct", "needs_fix", "unsure")
#: The verdict a saved correction records for each structure it changes.
FIXED = "fixed"
ALL_VERDICTS = (*VERDICTS, FIXED)
FORMAT = 2
READABLE_FORMATS = (1, 2)
#: Seconds to wait for another reviewer's lock before giving up.
LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Verdict:
    """One reviewer's verdict on one structure of one case."""

    case_id: str
    structure: str
    verdict: str
    note: str = ""
    time: str = ""
    reviewer: str = ""
    #: The correction file (inside the results folder) a ``fixed`` verdict refers to.
    correction: str = ""

    def describe(self) -> str:
        return f"{self.verdict}: {self.note}" if self.note else self.verdict

    def to_dict(self) -> dict:
        data = {"case_id": self.case_id, "structure": self.structure, "verdict": self.verdict, "note": self.note,
                "time": self.time}
        data.update({key: value for key, value in (("reviewer", self.reviewer), ("correction", self.correction)) if value})
        return data


@dataclass
class Review:
    """Every verdict of a results folder, by (case id, structure)."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    #: Each case's saved corrections, oldest first (the last is current).
    corrections: dict[str, list[Correction]] = field(default_factory=dict)

    def get(self, case_id: str, structure: str) -> Verdict | None:
        return self.verdicts.get((case_id, structure))

    def reviewed(self, pairs: Iterable[tuple[str, str]]) -> int:
        """How many of ``pairs`` have a verdict."""
        return sum(pair in self.verdicts for pair in pairs)

    def counts(self) -> dict[str, int]:
        return {name: sum(v.verdict == name for v in self.verdicts.values()) for name in ALL_VERDICTS}

    def add_correction(self, correction: Correction, kept: str | None) -> None:
        """Make ``correction`` its case's current one and record ``fixed`` for each structure it changes.

        ``kept``: where the previous current file was kept; the verdicts and history entries that named it follow.
        """
        if kept is not None:
            for key, verdict in self.verdicts.items():
                if verdict.correction == correction.file:
                    self.verdicts[key] = replace(verdict, correction=kept)
            self.corrections[correction.case_id] = [replace(c, file=kept) if c.file == correction.file else c
                                                    for c in self.corrections.get(correction.case_id, [])]
        self.corrections.setdefault(correction.case_id, []).append(correction)
        for change in correction.changes:
            earlier = self.verdicts.get((correction.case_id, change.structure))
            note = correction.note or (earlier.note if earlier is not None else "")
            self.verdicts[(correction.case_id, change.structure)] = Verdict(
                correction.case_id, change.structure, FIXED, note, correction.time, correction.reviewer, correction.file)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "verdicts": [self.verdicts[key].to_dict() for key in sorted(self.verdicts)],
                "corrections": [c.to_dict() for case in sorted(self.corrections) for c in self.corrections[case]]}

    @classmethod
    def from_dict(cls, data: dict, source: str | Path) -> Review:
        from .corrections import Correction

        if (not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS
                or not isinstance(data.get("verdicts"), list)):
            raise InputError(source, f"is not a review file (needs format {' or '.join(map(str, READABLE_FORMATS))} "
                             "and a verdicts list)")
        review = cls()
        for entry in data["verdicts"]:
            try:
                verdict = Verdict(str(entry["case_id"]), str(entry["structure"]), str(entry["verdict"]),
                                  str(entry.get("note") or ""), str(entry.get("time") or ""),
                                  str(entry.get("reviewer") or ""), str(entry.get("correction") or ""))
            except (KeyError, TypeError) as error:
                raise InputError(source, f"holds a malformed verdict ({error!r}): {entry!r}") from error
            _check_verdict(verdict.verdict, source, ALL_VERDICTS)
            review.verdicts[(verdict.case_id, verdict.structure)] = verdict
        for entry in data.get("corrections") or []:
            try:
                correction = Correction.from_dict(entry)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise InputError(source, f"holds a malformed correction ({error!r}): {entry!r}") from error
            review.corrections.setdefault(correction.case_id, []).append(correction)
        return review


def _check_verdict(verdict: str, source: str | Path, allowed: tuple[str, ...] = VERDICTS) -> None:
    if verdict not in allowed:
        if verdict == FIXED:
            raise InputError(source, f"the verdict {FIXED!r} is recorded by saving a correction, not given alone")
        raise InputError(source, f"verdict {verdict!r} is not one of {', '.join(allowed)}")


def load_review(path: str | Path) -> Review:
    """Read ``review.json``; a missing file is an empty review, an unreadable one an InputError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Review()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot be read as JSON ({error})") from error
    return Review.from_dict(data, path)


def review_lock(path: str | Path) -> FileLock:
    """The lock beside ``review.json`` that every change of it (a verdict, a correction) holds."""
    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)


def write_review(path: str | Path, review: Review) -> None:
    """Write ``review`` atomically; hold :func:`review_lock` from reading it to here."""
    atomic_write_bytes(path, (json.dumps(review.to_dict(), indent=1) + "\n").encode("utf-8"))


def record_verdict(path: str | Path, case_id: str, structure: str, verdict: str, note: str = "") -> Review:
    """Record (or replace) the verdict on ``structure`` of ``case_id`` at once; returns the review as written."""
    path = Path(path)
    _check_verdict(verdict, path)
    with review_lock(path):
        review = load_review(path)
        time = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (datetime.UTC needs 3.11)
        review.verdicts[(case_id, structure)] = Verdict(case_id, structure, verdict, note, time)
        write_review(path, review)
    return review


def clear_verdict(path: str | Path, case_id: str, structure: str) -> Review:
    """Remove the verdict on ``structure`` of ``case_id`` (nothing happens when it has none)."""
    path = Path(path)
    with review_lock(path):
        review = load_review(path)
        if review.verdicts.pop((case_id, structure), None) is not None:
            write_review(path, review)
    return review
