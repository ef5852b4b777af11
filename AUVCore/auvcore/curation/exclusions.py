"""The exclusion list (``exclusions.json``): every curation decision, written atomically under a lock.

Rules:

* Manual decisions always win over quantile ones, the latest manual decision
  for a case wins, and re-running the quantile never touches manual decisions.
* Files are written atomically (temporary file in the same folder, then
  ``os.replace``) under a lock, so neither a crash nor a concurrent writer can
  leave a half-written file. A corrupt or foreign exclusion file raises
  :class:`~auvcore.errors.InputError` and is left as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal

from ..errors import InputError
from ..files import atomic_write_bytes
from .quantile import check_keep, quantile_threshold, scored_cases

if TYPE_CHECKING:
    import pandas as pd
    from filelock import FileLock

Action = Literal["exclude", "include"]
Reason = Literal["auv-quantile", "manual"]

#: The marker and version that identify an exclusion list written by this module.
FORMAT_MARKER = "auv-exclusions"
FORMAT_VERSION = 1
#: The digest :func:`file_digest` gives a file that does not exist.
MISSING_FILE = "missing"
#: Seconds to wait for another writer's lock before giving up.
LOCK_TIMEOUT_S = 30.0

_DECISION_FIELDS = ("case_id", "action", "reason", "auv", "note", "time", "tool_version")


def tool_version() -> str:
    """The installed auvcore version, or ``"unknown"`` when run from an uninstalled tree."""
    try:
        return metadata.version("auvcore")
    except metadata.PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Decision:
    """One curation decision about one case.

    Example:
        >>> d = Decision("case7", "exclude", "manual", 0.93, "motion artefact", "2026-01-01T00:00:00+00:00", "0.1.0")
        >>> Decision.from_dict(d.to_dict()) == d
        True
    """

    case_id: str
    action: Action
    reason: Reason
    auv: float | None
    note: str
    time: str
    tool_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "Decision":
        """Parse one decision, raising ValueError saying what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"a decision must be an object, got {type(data).__name__}")
        missing = [name for name in _DECISION_FIELDS if name not in data]
        if missing:
            raise ValueError(f"a decision lacks {', '.join(missing)}: {data}")
        if data["action"] not in ("exclude", "include"):
            raise ValueError(f"unknown action {data['action']!r} (expected 'exclude' or 'include')")
        if data["reason"] not in ("auv-quantile", "manual"):
            raise ValueError(f"unknown reason {data['reason']!r} (expected 'auv-quantile' or 'manual')")
        if data["reason"] == "auv-quantile" and data["action"] != "exclude":
            raise ValueError(f"a quantile decision can only exclude: {data}")
        for name in ("case_id", "note", "time", "tool_version"):
            if not isinstance(data[name], str):
                raise ValueError(f"{name} must be a string: {data}")
        auv = data["auv"]
        if auv is not None and (isinstance(auv, bool) or not isinstance(auv, (int, float))):
            raise ValueError(f"auv must be a number or null: {data}")
        return cls(data["case_id"], data["action"], data["reason"],
                   None if auv is None else float(auv), data["note"], data["time"], data["tool_version"])


@dataclass(frozen=True)
class QuantileRule:
    """The last quantile filter applied: keep fraction p, its threshold F^-1(p), the cohort size, and the column."""

    keep: float
    threshold: float | None
    n_scored: int
    time: str
    #: The results column the quantile is taken over: ``auv`` or any scorer's case score.
    by: str = "auv"


@dataclass
class ExclusionList:
    """Curation decisions of one cohort: the current quantile ones and the manual history.

    Manual decisions are an append-only history (nothing a curator did is
    dropped); for each case the latest manual decision wins over any quantile
    decision. :attr:`loaded_digest` is the digest of the file this list was read
    from, for :func:`save_exclusions`'s check that nobody changed it meanwhile.
    """

    quantile: dict[str, Decision] = field(default_factory=dict)
    manual: list[Decision] = field(default_factory=list)
    rule: QuantileRule | None = None
    loaded_digest: str | None = None

    def effective(self) -> dict[str, Decision]:
        """Case id -> the decision in force for it (latest manual, else quantile)."""
        decided = dict(self.quantile)
        for decision in self.manual:
            decided[decision.case_id] = decision
        return decided

    def excluded(self) -> set[str]:
        """The case ids excluded, whether by the quantile or by hand."""
        return {case for case, d in self.effective().items() if d.action == "exclude"}

    def included_by_hand(self) -> set[str]:
        """The case ids whose decision in force is a manual inclusion."""
        return {case for case, d in self.effective().items() if d.action == "include"}

    def exclude(self, case_id: str, auv: float | None, note: str = "", reason: Reason = "manual") -> None:
        """Exclude a case by hand (or, with ``reason="auv-quantile"``, as the quantile rule does)."""
        decision = Decision(str(case_id), "exclude", reason, _as_auv(auv), note, _now(), tool_version())
        if reason == "auv-quantile":
            self.quantile[decision.case_id] = decision
        elif reason == "manual":
            self.manual.append(decision)
        else:
            raise ValueError(f"reason must be 'auv-quantile' or 'manual', got {reason!r}")

    def include(self, case_id: str, note: str = "", auv: float | None = None) -> None:
        """Include a case by hand; this overrides a quantile or earlier manual exclusion."""
        known = self.effective().get(str(case_id))
        if auv is None and known is not None:
            auv = known.auv
        self.manual.append(Decision(str(case_id), "include", "manual", _as_auv(auv), note, _now(), tool_version()))

    def apply_quantile(self, results: "pd.DataFrame", keep: float, by: str = "auv") -> None:
        """Recompute the quantile exclusions from ``results`` (columns case_id, auv, ``by``[, status]).

        ``by`` is the column whose quantile decides (``auv``, or any scorer's case
        score); the decisions keep the case's AUV, and their note names the column.
        Manual decisions are left alone. A case excluded before by the same
        rule with the same value keeps its original decision (and time), so
        re-running is idempotent.
        With no scored case there is no threshold and nothing is excluded.
        """
        check_keep(keep)
        scored = scored_cases(results, by)
        threshold = quantile_threshold(scored[by], keep) if len(scored) else None
        label = "AUV" if by == "auv" else by
        fresh: dict[str, Decision] = {}
        if threshold is not None:
            for case_id, value, auv in zip(scored["case_id"], scored[by], scored["auv"]):
                if value <= threshold:
                    continue
                note = f"{label} {value:.4g} > F^-1({keep:g}) = {threshold:.4g}"
                previous = self.quantile.get(case_id)
                if previous is not None and (previous.auv, previous.note) == (_as_auv(auv), note):
                    fresh[case_id] = previous
                else:
                    fresh[case_id] = Decision(case_id, "exclude", "auv-quantile", _as_auv(auv), note, _now(), tool_version())
        self.quantile = fresh
        self.rule = QuantileRule(float(keep), threshold, len(scored), _now(), by)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: format marker, version, last rule, and all decisions."""
        return {
            "format": FORMAT_MARKER,
            "version": FORMAT_VERSION,
            "tool_version": tool_version(),
            "quantile_rule": None if self.rule is None else asdict(self.rule),
            "decisions": [d.to_dict() for d in self.quantile.values()] + [d.to_dict() for d in self.manual],
        }

    @classmethod
    def from_dict(cls, data: Any) -> "ExclusionList":
        """Parse :meth:`to_dict`'s document, raising ValueError for anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_MARKER:
            raise ValueError(f"is not an AUV exclusion list (no \"format\": \"{FORMAT_MARKER}\" marker)")
        version = data.get("version")
        if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
            raise ValueError(f"has exclusion-list version {version!r}; this auvcore ({tool_version()}) reads versions 1 to {FORMAT_VERSION}")
        decisions = data.get("decisions")
        if not isinstance(decisions, list):
            raise ValueError("has no \"decisions\" list")
        parsed = cls(rule=_parse_rule(data.get("quantile_rule")))
        for entry in decisions:
            decision = Decision.from_dict(entry)
            if decision.reason == "auv-quantile":
                parsed.quantile[decision.case_id] = decision
            else:
                parsed.manual.append(decision)
        return parsed


def _parse_rule(data: Any) -> QuantileRule | None:
    if data is None:
        return None
    try:
        threshold = data["threshold"]
        return QuantileRule(float(data["keep"]), None if threshold is None else float(threshold),
                            int(data["n_scored"]), str(data["time"]), str(data.get("by", "auv")))
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"has a malformed \"quantile_rule\" ({error!r})") from None


def _as_auv(auv: Any) -> float | None:
    if auv is None:
        return None
    value = float(auv)
    return None if math.isnan(value) else value


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or :data:`MISSING_FILE` when it does not exist."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return MISSING_FILE


def load_exclusions(path: str | Path) -> ExclusionList:
    """Read an exclusion list; a missing file gives an empty list.

    Raises:
        InputError: naming the file, when it is not JSON or not an exclusion
            list of a version this auvcore reads. The file is not modified.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ExclusionList(loaded_digest=MISSING_FILE)
    try:
        exclusions = ExclusionList.from_dict(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"is not valid JSON ({error}); it was left untouched") from None
    except ValueError as error:
        raise InputError(path, f"{error}; it was left untouched") from None
    exclusions.loaded_digest = hashlib.sha256(raw).hexdigest()
    return exclusions


class ConcurrentChangeError(InputError):
    """The file changed on disk since it was read; saving would overwrite someone's decisions."""


def _lock(path: Path) -> "FileLock":
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)


def save_exclusions(path: str | Path, exclusions: ExclusionList, expected_previous: str | None = None) -> str:
    """Write the list atomically; return the new file's digest (also set as ``loaded_digest``).

    Args:
        expected_previous: the digest the file must still have (usually
            ``exclusions.loaded_digest``, :data:`MISSING_FILE` for a new file);
            ``None`` skips the check.

    Raises:
        ConcurrentChangeError: the file's digest differs from ``expected_previous``.
    """
    path = Path(path)
    with _lock(path):
        return _save_locked(path, exclusions, expected_previous)


def _save_locked(path: Path, exclusions: ExclusionList, expected_previous: str | None) -> str:
    if expected_previous is not None and file_digest(path) != expected_previous:
        raise ConcurrentChangeError(path, "changed on disk since it was read (another curator or process); reload it and redo the change")
    payload = (json.dumps(exclusions.to_dict(), indent=2, allow_nan=False) + "\n").encode("utf-8")
    atomic_write_bytes(path, payload)
    exclusions.loaded_digest = hashlib.sha256(payload).hexdigest()
    return exclusions.loaded_digest


@contextlib.contextmanager
def updating_exclusions(path: str | Path) -> Iterator[ExclusionList]:
    """Read, change and save an exclusion list while holding its lock.

    Nothing is written when the block raises (or the file cannot be read).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "exclusions.json"
        >>> with updating_exclusions(target) as decisions:
        ...     decisions.exclude("case3", auv=0.97, note="wrong label file")
        >>> sorted(load_exclusions(target).excluded())
        ['case3']
    """
    path = Path(path)
    with _lock(path):
        exclusions = load_exclusions(path)
        yield exclusions
        _save_locked(path, exclusions, exclusions.loaded_digest)


