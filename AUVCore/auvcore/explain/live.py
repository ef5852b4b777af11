"""Running the foundation model on one class, by the code ``auv score`` runs: the live half of :mod:`.view`.

Example:
    >>> view = compute_class_view(CaseSpec("ct", image, label, names), "liver", ScoreSettings(device="cpu"))  # doctest: +SKIP
    >>> view.S, view.normaliser, len(view.slices)  # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np

from ..backends import FoundationBackend, create_backend
from ..cohort.settings import ScoreSettings
from ..datasets import CaseSpec
from ..errors import InputError
from ..files import file_sha256
from ..imaging import LoadedCase, detect_modality, load_case, normalise_intensity
from ..results import json_number
from ..scorers import CASE_SCORERS, PROBE_SCORERS, CaseInputs
from ..spectrum import class_spectra
from .cache import ClassArrays, class_arrays, feature_arrays
from .view import CASE_LEVEL, ClassView, build_view, resolve_class


def class_backend(backbone: str, settings: ScoreSettings | None) -> FoundationBackend:
    """The backend a stored case was scored with, on ``settings``' device (with its checkpoint)."""
    settings = settings or ScoreSettings(backbone=backbone)
    return create_backend(backbone or settings.backbone, settings.device, settings.checkpoint)


def run_model(case: LoadedCase, volume: np.ndarray, class_id: int, backend: FoundationBackend
               ) -> tuple[ClassArrays, dict[str, np.ndarray], float | None, str | None, dict[str, float | None]]:
    """The class's arrays, S and per-class scorer values from one model pass, as ``auv score`` computes them."""
    assert case.labels is not None
    # The image's hash lets the backend reuse its slice embeddings for a label-only planted copy.
    features = backend.classwise_features(volume, case.labels, [class_id], image_key=file_sha256(case.image_path))
    scales = class_spectra(features.z, features.present)
    inputs = CaseInputs(volume, case.labels, [class_id], case.spacing, features)
    scores = {name: json_number(scorer(inputs).per_class[0]) for name, scorer in CASE_SCORERS.items() if name not in CASE_LEVEL and name not in PROBE_SCORERS}  # the live view runs no probe
    arrays = feature_arrays(features, scales, [class_id], case)
    loaded = class_arrays(arrays, class_id)
    assert loaded is not None
    return loaded, arrays, json_number(scales.values[0]), scales.reasons[0], scores


def compute_class_view(spec: CaseSpec, class_name: str, settings: ScoreSettings,
                       backend: FoundationBackend | None = None) -> ClassView:
    """Run the model on one class of ``spec`` (its slices only) and build its view.

    S and the per-class scorer values are those ``auv score`` gives the class.
    """
    if spec.label is None:
        raise InputError(spec.image, "explaining a class needs its label map (--label)")
    started = time.perf_counter()
    case = load_case(spec.image, spec.label)
    assert case.labels is not None
    class_id = resolve_class(case.labels, spec.class_names, class_name, spec.label)
    modality = detect_modality(case.image) if settings.modality == "auto" else settings.modality
    volume = normalise_intensity(case.image, modality, settings.ct_window)
    backend = backend or create_backend(settings.backbone, settings.device, settings.checkpoint)
    arrays, _, S, reason, scores = run_model(case, volume, class_id, backend)
    source = f"computed now by {settings.backbone} on {backend.device} in {time.perf_counter() - started:.1f} s"
    return build_view(case, volume, spec.case_id, class_id, spec.name_of(class_id), arrays, S, reason, scores, source)


