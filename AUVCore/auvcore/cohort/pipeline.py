"""One case, from files to its record: read and check the volumes, run the backend, S per class, the extra scorers."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..backends import FoundationBackend, create_backend
from ..backends.base import BoxPrompter
from ..datasets import CaseSpec
from ..errors import InputError
from ..explain.cache import FeatureArrays, feature_arrays, proposal_arrays
from ..files import file_sha256
from ..imaging import LoadedCase, detect_modality, load_case, normalise_intensity, structure_centres
from ..results.case_record import CaseRecord, ClassRecord, ScorerValues, json_number
from ..prompts import probe_boxes
from ..scorers import CASE_SCORERS, NEEDS_PROTOTYPES, PROBE_SCORERS, CaseInputs, class_prototypes
from ..scorers.evidence import StructureEvidence, case_evidence
from ..scorers.grid import logits_on_label_grid
from ..spectrum import class_spectra
from .settings import SCORES_GENERATION, ScoreSettings, checkpoint_identity, package_versions, runtime_identity

#: A case's class prototypes by class name (the cohort scorers compare them across cases).
Prototypes = dict[str, np.ndarray]


@dataclass(frozen=True)
class CaseIdentity:
    """A case's files (by content), the weights, its class names, the auvcore version and the runtime: with the
    scoring settings, what its cache key hashes. Kept apart so that the key of other settings (another scorer set)
    can be made without hashing the files again."""

    image_hash: str
    parts: dict[str, Any]

    def key(self, settings: ScoreSettings) -> str:
        """The cache key of the case scored with ``settings``."""
        identity = {**self.parts, "settings": settings.key_dict()}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class PreparedCase:
    """A case read, checked and scaled for the model (:meth:`CaseScorer.prepare`): what the model pass takes.

    Attributes:
        volume: the image scaled to [0, 1], float32 (D, H, W).
        class_ids: the label values scored (``[0]`` in image mode).
        io_seconds: reading and scaling; ``seconds``: all of the preparation.
    """

    spec: CaseSpec
    case: LoadedCase
    volume: np.ndarray
    modality: str
    class_ids: list[int]
    io_seconds: float
    seconds: float


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
    _runtime: dict[str, str] | None = field(default=None, init=False, repr=False)
    _creating: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def runtime(self) -> dict[str, str]:
        """The runtime that runs the model (:func:`runtime_identity`), resolved once."""
        if self._runtime is None:
            self._runtime = runtime_identity(self.settings)
        return self._runtime

    @property
    def backend(self) -> FoundationBackend:
        if self._backend is not None:
            return self._backend
        with self._creating:  # the cohort loop's reading thread may be the first to ask (for the feature size)
            if self._backend is not None:
                return self._backend
            options: dict[str, Any] = {"runtime": self.runtime["name"], "precision": self.settings.precision}
            if self.settings.compile:
                options["compile"] = True
            factory = self.backend_factory or (
                lambda: create_backend(self.settings.backbone, self.settings.device, self.settings.checkpoint, **options)
            )
            self._backend = factory()
        return self._backend

    def case_identity(self, spec: CaseSpec) -> CaseIdentity:
        """What the case's cache key hashes besides the settings (the files are hashed once, here)."""
        for path in (spec.image, spec.label):
            if path is not None and not Path(path).exists():
                raise InputError(path, "does not exist")
        if self._weights is None:
            self._weights = checkpoint_identity(self.settings)
        image_hash = file_sha256(spec.image)
        parts = {
            "image": image_hash,
            "label": file_sha256(spec.label) if spec.label and self.settings.mode == "classwise" else None,
            "weights": self._weights,
            "class_names": {str(k): v for k, v in sorted(spec.class_names.items())},
            "auvcore": SCORES_GENERATION,
        }
        if self.runtime["name"] != "torch":  # torch, the reference, keeps the keys it always had
            parts["runtime"] = self.runtime
        return CaseIdentity(image_hash, parts)

    def case_key(self, spec: CaseSpec) -> tuple[str, str]:
        """(cache key of the case's scores, content hash of its image)."""
        identity = self.case_identity(spec)
        return identity.key(self.settings), identity.image_hash

    def prepare(self, spec: CaseSpec) -> PreparedCase:
        """Read and check the case's volumes, detect the modality, scale the intensities, find the classes and check
        the feature memory: everything before the model pass (:meth:`score_prepared`). Raises InputError naming the
        file for bad input. Reads no model state but the backend's feature size, so the cohort loop runs it for the
        next case while the model runs on this one."""
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
        return PreparedCase(spec, case, volume, modality, class_ids, io_seconds, time.perf_counter() - started)

    def score(self, spec: CaseSpec, cache_key: str, image_hash: str | None = None
              ) -> tuple[CaseRecord, Prototypes | None, FeatureArrays]:
        """The case's record, its class prototypes (for the cohort scorers) and its feature cache
        (:mod:`auvcore.explain.cache`); raises InputError for bad input. :meth:`prepare`, then :meth:`score_prepared`."""
        return self.score_prepared(self.prepare(spec), cache_key, image_hash)

    def score_prepared(self, prepared: PreparedCase, cache_key: str, image_hash: str | None = None
                       ) -> tuple[CaseRecord, Prototypes | None, FeatureArrays]:
        """:meth:`score` of a case :meth:`prepare` has read: the model pass, the spectrum, the scorers and the record.
        Its ``timings`` count the preparation too (``io``, and in ``total``), wherever and whenever it ran."""
        started = time.perf_counter()
        spec, case, volume, modality, class_ids = prepared.spec, prepared.case, prepared.volume, prepared.modality, prepared.class_ids
        mode = self.settings.mode
        image_key = image_hash or file_sha256(spec.image)
        if mode == "classwise":
            features = self.backend.classwise_features(volume, case.labels, class_ids, image_key=image_key)
        else:
            features = self.backend.image_features(volume, image_key=image_key)
        spectrum_start = time.perf_counter()
        scales = class_spectra(features.z, features.present)
        spectrum_seconds = time.perf_counter() - spectrum_start
        names = ["image"] if mode == "image" else [spec.name_of(c) for c in class_ids]
        probe_start = time.perf_counter()
        evidence, evidence_reason = self._probe(volume, case.labels, class_ids, case.spacing, image_key) if mode == "classwise" else (None, None)
        probe_seconds = time.perf_counter() - probe_start
        extra_start = time.perf_counter()
        inputs = CaseInputs(volume, case.labels, class_ids, case.spacing, features, evidence=evidence, evidence_reason=evidence_reason)
        scores, prototypes = self._extra_scores(inputs, names)
        extra_seconds = time.perf_counter() - extra_start
        backend_timings, slices_encoded = features.timings, features.slices_encoded
        cached_features = feature_arrays(features, scales, class_ids, case)
        for class_id, found in zip(class_ids, evidence or ()):
            if found is not None:
                cached_features.update(proposal_arrays(class_id, found.corner, found.label, found.model))
        del features, inputs  # the feature tensor can be GiBs; the record needs none of it
        timings = {"io": prepared.io_seconds, **backend_timings, "spectrum": spectrum_seconds, "scorers": extra_seconds}
        if evidence is not None:
            timings["probe"] = probe_seconds
        timings["total"] = prepared.seconds + (time.perf_counter() - started)

        voxels = np.bincount(case.labels.ravel().astype(np.int64)) if mode == "classwise" else None
        classes = tuple(
            ClassRecord(class_id, name, json_number(float(scales.values[index])), int(scales.rows[index]), scales.reasons[index],
                        None if voxels is None else int(voxels[class_id]))
            for index, (class_id, name) in enumerate(zip(class_ids, names))
        )
        absent = sorted(set(spec.class_names) - set(class_ids)) if mode == "classwise" else []
        record = CaseRecord(
            case_id=spec.case_id,
            image=str(spec.image),
            label=None if spec.label is None else str(spec.label),
            label_names=None if spec.label_names is None else str(spec.label_names),
            image_sha256=image_key,
            S=json_number(scales.total()),
            classes=classes,
            absent_classes=tuple(spec.name_of(c) for c in absent),
            modality=modality,
            backbone=self.settings.backbone,
            mode=mode,
            settings=self.settings.key_dict(),
            versions=dict(package_versions()),
            runtime=self.runtime,
            timings=timings,
            slices_encoded=slices_encoded,
            geometry=case.geometry.to_dict(),
            cache_key=cache_key,
            scores=scores,
            # The per-slice values count slices along axis 0 of the LPS-oriented volume; these are their centres.
            slice_centres_lps=[[round(v, 4) for v in point] for point in case.slice_centres] if scores else None,
            structure_centres_lps=_structure_centres(case, class_ids, names) if scores else None,
        )
        return record, prototypes, cached_features

    def _probe(self, volume: np.ndarray, labels: np.ndarray, class_ids: list[int], spacing: tuple[float, float, float],
               image_key: str) -> tuple[list[StructureEvidence | None] | None, str | None]:
        """The label-independent evidence of every class (:mod:`auvcore.scorers.evidence`) when a scorer reads it:
        the model prompted again with the probe's boxes on the same embeddings. (None, why) where it cannot be."""
        if not PROBE_SCORERS & set(self.settings.scorers):
            return None, None
        if not isinstance(self.backend, BoxPrompter):
            return None, f"the {self.settings.backbone} backend cannot be prompted with boxes other than the label's"
        probe = probe_boxes(labels, class_ids)
        logits, _ = self.backend.box_logits(volume, probe.slices, probe.boxes, image_key=image_key)
        shape = (labels.shape[1], labels.shape[2])
        return case_evidence(labels, class_ids, spacing, probe, lambda positions: logits_on_label_grid(logits[torch.from_numpy(positions)], shape)), None

    def _extra_scores(self, inputs: CaseInputs, names: list[str]) -> tuple[dict[str, ScorerValues], Prototypes | None]:
        """The per-case scorers' class (and slice) values, and the class prototypes the cohort scorers need."""
        scores: dict[str, ScorerValues] = {}
        for name in self.settings.scorers:
            if name not in CASE_SCORERS:
                continue
            output = CASE_SCORERS[name](inputs)
            keys = ["image"] if name == "image_auv" else names
            slices = None
            if output.per_slice is not None:
                slices = {k: [json_number(v) for v in row] for k, row in zip(keys, output.per_slice.tolist()) if np.isfinite(row).any()}
            scores[name] = ScorerValues({k: json_number(v) for k, v in zip(keys, output.per_class.tolist())}, slices, output.reason or None)
        prototypes = None
        if NEEDS_PROTOTYPES & set(self.settings.scorers):
            matrix = class_prototypes(inputs)
            if matrix is not None:
                prototypes = {name: row for name, row in zip(names, matrix) if np.all(np.isfinite(row))}
        return scores, prototypes


def _structure_centres(case: LoadedCase, class_ids: list[int], names: list[str]) -> dict[str, list[list[float]]] | None:
    """Each class's centre on each of its slices, named as the record names classes (classwise mode only)."""
    if case.labels is None or case.oriented is None:
        return None
    centres = structure_centres(case.labels, class_ids, case.oriented)
    return {name: centres[class_id] for class_id, name in zip(class_ids, names)}


def error_record(spec: CaseSpec, settings: ScoreSettings, error: Exception, cache_key: str | None) -> CaseRecord:
    """The record of a case that could not be scored: ``error`` names the file and the problem."""
    return CaseRecord(
        case_id=spec.case_id,
        image=str(spec.image),
        label=None if spec.label is None else str(spec.label),
        label_names=None if spec.label_names is None else str(spec.label_names),
        status="error",
        error=str(error),
        backbone=settings.backbone,
        mode=settings.mode,
        settings=settings.key_dict(),
        versions=dict(package_versions()),
        cache_key=cache_key,
    )
