"""Reviewers' verdicts on structures, ``review.json`` beside ``exclusions.json``: read and record, never lost.

A verdict says whether one structure (a class) of one case is annotated
``correct``, ``needs_fix`` or is ``unsure``, with an optional note. Each
verdict is written the moment it is given: the file is read, changed and
written atomically (:func:`auvcore.files.atomic_write_bytes`) under a lock
beside it, as :mod:`auvcore.curation` does for ``exclusions.json``, so a crash
mid-write leaves the previous file whole and two reviewers of one folder never
overwrite each other's verdicts. Torch-free: ``auv report`` and the Slicer module read it.

The file::

    {"format": 1,
     "verdicts": [{"case_id": "ct_7", "structure": "liver", "verdict": "needs_fix",
                   "note": "misses the left lobe tip", "time": "2026-12-02T10:02:11+00:00"}]}

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "review.json"
    >>> review = record_verdict(target, "ct_7", "liver", "needs_fix", note="misses the left lobe tip")
    >>> load_review(target).get("ct_7", "liver").verdict
    'needs_fix'
    >>> load_review(target).counts()
    {'correct': 0, 'needs_fix': 1, 'unsure': 0}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from ..errors import InputError
from ..files import atomic_write_bytes

#: The verdicts a reviewer gives, in the order the panel shows them.
VERDICTS = ("correct", "needs_fix", "unsure")
FORMAT = 1
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

    def describe(self) -> str:
        return f"{self.verdict}: {self.note}" if self.note else self.verdict


@dataclass
class Review:
    """Every verdict of a results folder, by (case id, structure)."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    def get(self, case_id: str, structure: str) -> Verdict | None:
        return self.verdicts.get((case_id, structure))

    def reviewed(self, pairs: Iterable[tuple[str, str]]) -> int:
        """How many of ``pairs`` have a verdict."""
        return sum(pair in self.verdicts for pair in pairs)

    def counts(self) -> dict[str, int]:
        return {name: sum(v.verdict == name for v in self.verdicts.values()) for name in VERDICTS}

    def to_dict(self) -> dict:
        return {"format": FORMAT, "verdicts": [asdict(self.verdicts[key]) for key in sorted(self.verdicts)]}

    @classmethod
    def from_dict(cls, data: dict, source: str | Path) -> Review:
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("verdicts"), list):
            raise InputError(source, f"is not a review file (needs format {FORMAT} and a verdicts list)")
        review = cls()
        for entry in data["verdicts"]:
            try:
                verdict = Verdict(str(entry["case_id"]), str(entry["structure"]), str(entry["verdict"]),
                                  str(entry.get("note") or ""), str(entry.get("time") or ""))
            except (KeyError, TypeError) as error:
                raise InputError(source, f"holds a malformed verdict ({error!r}): {entry!r}") from error
            _check_verdict(verdict.verdict, source)
            review.verdicts[(verdict.case_id, verdict.structure)] = verdict
        return review


def _check_verdict(verdict: str, source: str | Path) -> None:
    if verdict not in VERDICTS:
        raise InputError(source, f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")


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


def _lock(path: Path) -> FileLock:
    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)


def _write(path: Path, review: Review) -> None:
    atomic_write_bytes(path, (json.dumps(review.to_dict(), indent=1) + "\n").encode("utf-8"))


def record_verdict(path: str | Path, case_id: str, structure: str, verdict: str, note: str = "") -> Review:
    """Record (or replace) the verdict on ``structure`` of ``case_id`` at once; returns the review as written."""
    path = Path(path)
    _check_verdict(verdict, path)
    with _lock(path):
        review = load_review(path)
        time = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (datetime.UTC needs 3.11)
        review.verdicts[(case_id, structure)] = Verdict(case_id, structure, verdict, note, time)
        _write(path, review)
    return review


def clear_verdict(path: str | Path, case_id: str, structure: str) -> Review:
    """Remove the verdict on ``structure`` of ``case_id`` (nothing happens when it has none)."""
    path = Path(path)
    with _lock(path):
        review = load_review(path)
        if review.verdicts.pop((case_id, structure), None) is not None:
            _write(path, review)
    return review
