"""Cohort curation: quantile filtering, manual decisions, and the retained cohort's exports.

A results folder written by ``auv score`` gains three files here (SPEC §5):

* ``exclusions.json``: every exclusion/inclusion decision with case id, AUV,
  reason (``auv-quantile`` or ``manual``), time and tool version;
* ``retained_manifest.csv``: the retained cases (case_id, image, label, auv, S),
  a manifest ``auv score`` and the trainer read back;
* ``splits_final.json``: nnU-Net's 5-fold cross-validation split of the retained cases.

It also reads the cohort's saved AUV scale (``reference.json``) to place a new
case on it (:func:`load_reference`).

Rules:

* The quantile is the paper's F^-1(p): the smallest AUV x whose empirical CDF
  F(x) >= p; the cases with AUV <= x are kept, so ties at x are all kept.
* Cases whose scoring failed (status ``error`` or AUV NaN) take no part in the
  quantile: they are neither kept nor excluded by it, and are not retained
  unless a curator includes them by hand.
* Manual decisions always win over quantile ones, the latest manual decision
  for a case wins, and re-running the quantile never touches manual decisions.
* Files are written atomically (temporary file in the same folder, then
  ``os.replace``) under a lock, so neither a crash nor a concurrent writer can
  leave a half-written file. A corrupt or foreign exclusion file raises
  :class:`~auvcore.errors.InputError` and is left as it is.

Example:
    >>> import pandas as pd
    >>> results = pd.DataFrame({"case_id": ["a", "b", "c", "d"],
    ...                         "auv": [0.0, 0.2, 0.7, 1.0], "status": ["ok"] * 4})
    >>> quantile_threshold(results["auv"], keep=0.75)
    0.7
    >>> decisions = ExclusionList()
    >>> decisions.apply_quantile(results, keep=0.75)
    >>> decisions.include("d", note="checked by hand")
    >>> decisions.exclude("a", auv=0.0, note="wrong phase")
    >>> sorted(decisions.excluded()), retained_cases(results, decisions)
    (['a'], ['b', 'c', 'd'])
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np
import pandas as pd
from filelock import FileLock

from .errors import InputError
from .files import atomic_write_bytes

Action = Literal["exclude", "include"]
Reason = Literal["auv-quantile", "manual"]

#: Default file names inside a results folder.
EXCLUSIONS_NAME = "exclusions.json"
MANIFEST_NAME = "retained_manifest.csv"
SPLITS_NAME = "splits_final.json"
RESULTS_NAME = "results.csv"

#: The marker and version that identify an exclusion list written by this module.
FORMAT_MARKER = "auv-exclusions"
FORMAT_VERSION = 1
#: The digest :func:`file_digest` gives a file that does not exist.
MISSING_FILE = "missing"
#: nnU-Net's default number of folds and seed for its cross-validation split.
NNUNET_FOLDS = 5
NNUNET_SEED = 12345
#: Relative tolerance when comparing F(x) with p: ``0.7 * 10`` is 7.000000000000001
#: in floating point, and keeping 70 % of 10 cases must keep 7, not 8.
CDF_TOLERANCE = 1e-9
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
    """The last quantile filter applied: keep fraction p, its threshold F^-1(p), and the cohort size."""

    keep: float
    threshold: float | None
    n_scored: int
    time: str


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

    def apply_quantile(self, results: pd.DataFrame, keep: float) -> None:
        """Recompute the quantile exclusions from ``results`` (columns case_id, auv[, status]).

        Manual decisions are left alone. A case excluded before by the same
        rule with the same AUV keeps its original decision (and time), so
        re-running is idempotent.
        With no scored case there is no threshold and nothing is excluded.
        """
        _check_keep(keep)
        scored = scored_cases(results)
        threshold = quantile_threshold(scored["auv"], keep) if len(scored) else None
        fresh: dict[str, Decision] = {}
        if threshold is not None:
            for case_id, auv in zip(scored["case_id"], scored["auv"]):
                if auv <= threshold:
                    continue
                note = f"AUV {auv:.4g} > F^-1({keep:g}) = {threshold:.4g}"
                previous = self.quantile.get(case_id)
                if previous is not None and (previous.auv, previous.note) == (float(auv), note):
                    fresh[case_id] = previous
                else:
                    fresh[case_id] = Decision(case_id, "exclude", "auv-quantile", float(auv), note, _now(), tool_version())
        self.quantile = fresh
        self.rule = QuantileRule(float(keep), threshold, len(scored), _now())

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
                            int(data["n_scored"]), str(data["time"]))
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"has a malformed \"quantile_rule\" ({error!r})") from None


def _as_auv(auv: Any) -> float | None:
    if auv is None:
        return None
    value = float(auv)
    return None if math.isnan(value) else value


def scored_cases(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of cases that were scored: status ``ok`` (when given) and a finite AUV."""
    _require_columns(results, ("case_id", "auv"))
    auv = pd.to_numeric(results["auv"], errors="coerce")
    ok = np.isfinite(auv.to_numpy(dtype=np.float64))
    if "status" in results:
        ok &= (results["status"] == "ok").to_numpy()
    scored = results.loc[ok].copy()
    scored["case_id"] = scored["case_id"].astype(str)
    scored["auv"] = auv[ok].astype(np.float64)
    return scored


def _require_columns(results: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise ValueError(f"the results table lacks the column(s) {', '.join(missing)}")


def _check_keep(keep: float) -> None:
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")


def quantile_threshold(auv_values: Sequence[float] | np.ndarray | pd.Series, keep: float) -> float:
    """The paper's F^-1(p): the smallest AUV x with empirical CDF F(x) >= p (p = ``keep``).

    Keeping the cases with AUV <= x keeps at least a fraction p; cases tied at
    x are all kept. NaN values (failed cases) are ignored.

    Example:
        >>> quantile_threshold([0.1, 0.5, 0.5, 0.5, 0.9], keep=0.5)  # F(0.5) = 0.8
        0.5
        >>> quantile_threshold([0.3], keep=0.95), quantile_threshold([0.2, 0.6], keep=0.5)
        (0.3, 0.2)

    Raises:
        ValueError: ``keep`` outside (0, 1], or no finite value.
    """
    _check_keep(keep)
    values = np.sort(np.asarray(auv_values, dtype=np.float64))
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("no scored case (every AUV is NaN): there is no quantile")
    # F(values[k]) >= (k + 1) / n, so F^-1(p) is values[ceil(p n) - 1].
    rank = math.ceil(keep * values.size * (1.0 - CDF_TOLERANCE))
    return float(values[max(rank, 1) - 1])


def retained_cases(results: pd.DataFrame, exclusions: ExclusionList) -> list[str]:
    """Case ids to train on, in the results' order.

    A scored case is retained unless excluded; a failed case only when a
    curator included it by hand.
    """
    _require_columns(results, ("case_id", "auv"))
    scored = set(scored_cases(results)["case_id"])
    excluded = exclusions.excluded()
    by_hand = exclusions.included_by_hand()
    ids = results["case_id"].astype(str)
    return [c for c in ids if (c in scored and c not in excluded) or c in by_hand]


def read_results(results: str | Path) -> pd.DataFrame:
    """Read ``results.csv`` from a results folder (or the CSV itself), case ids as strings.

    Raises:
        InputError: naming the file, when it is missing, unreadable, or lacks
            the case_id/auv columns.
    """
    path = Path(results)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.is_file():
        raise InputError(path, "does not exist (run `auv score` first, or give its output folder)")
    try:
        table = pd.read_csv(path, dtype={"case_id": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(path, f"is not a readable results table: {error}") from None
    try:
        _require_columns(table, ("case_id", "auv"))
    except ValueError as error:
        raise InputError(path, str(error)) from None
    for column in table.columns:
        if column in ("auv", "S") or column.startswith("S_"):
            table[column] = pd.to_numeric(table[column], errors="coerce")
    if table["case_id"].duplicated().any():
        raise InputError(path, f"repeats case ids: {sorted(set(table['case_id'][table['case_id'].duplicated()]))}")
    return table


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


def _lock(path: Path) -> FileLock:
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


def crossval_splits(case_ids: Sequence[str], folds: int = NNUNET_FOLDS, seed: int = NNUNET_SEED) -> list[dict[str, list[str]]]:
    """nnU-Net's cross-validation split: K folds over the sorted ids, shuffled with ``seed``.

    The same split as nnU-Net's own ``generate_crossval_split`` (scikit-learn
    ``KFold(shuffle=True, random_state=seed)`` over the sorted ids): the first
    ``n % folds`` validation folds hold one case more; train lists are sorted,
    validation lists in shuffled order, as nnU-Net writes them. With fewer cases than
    folds there is one fold per case (nnU-Net trains a random 80:20 split for
    a fold number the file lacks).

    Example:
        >>> splits = crossval_splits([f"case{i}" for i in range(7)])
        >>> [len(s["val"]) for s in splits], sorted(sum((s["val"] for s in splits), []))[:2]
        ([2, 2, 1, 1, 1], ['case0', 'case1'])

    Raises:
        ValueError: fewer than 2 cases, repeated ids, or fewer than 2 folds.
    """
    ids = np.sort(np.asarray([str(c) for c in case_ids], dtype=object))
    if len(set(ids)) != len(ids):
        raise ValueError("case ids repeat; each case can be in one fold only")
    if len(ids) < 2:
        raise ValueError(f"a cross-validation split needs at least 2 cases, got {len(ids)}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    folds = min(folds, len(ids))
    order = np.arange(len(ids))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(folds, len(ids) // folds)
    sizes[: len(ids) % folds] += 1
    splits = []
    for stop, size in zip(np.cumsum(sizes), sizes):
        val = order[stop - size : stop]
        train = np.setdiff1d(np.arange(len(ids)), val)  # sorted, as KFold gives it
        splits.append({"train": ids[train].tolist(), "val": ids[val].tolist()})
    return splits


def write_splits_final(case_ids: Sequence[str], path: str | Path, folds: int = NNUNET_FOLDS,
                       seed: int = NNUNET_SEED) -> list[dict[str, list[str]]]:
    """Write :func:`crossval_splits` as nnU-Net's ``splits_final.json`` (atomically) and return it."""
    splits = crossval_splits(case_ids, folds, seed)
    atomic_write_bytes(path, (json.dumps(splits, indent=4) + "\n").encode("utf-8"))
    return splits


#: Columns of the retained manifest, in order (those the results table has).
MANIFEST_COLUMNS = ("case_id", "image", "label", "auv", "S")


def write_manifest(results_or_cases: pd.DataFrame | Sequence[str], path: str | Path) -> None:
    """Write a manifest CSV (atomically): the rows of a results table, or bare case ids.

    A results table keeps its case_id, image, label, auv and S columns, so the
    file is a manifest ``auv score`` reads back; a list of ids gives only case_id.
    """
    if isinstance(results_or_cases, pd.DataFrame):
        table = results_or_cases[[c for c in MANIFEST_COLUMNS if c in results_or_cases.columns]]
    else:
        table = pd.DataFrame({"case_id": [str(c) for c in results_or_cases]})
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
