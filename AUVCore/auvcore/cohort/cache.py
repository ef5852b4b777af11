"""The per-case cache: a case's JSON is its cache entry, its class prototypes lie beside it.

A record is reused when its ``cache_key`` (content hashes of image and label,
the weights, the settings) matches and it was scored without error; a cohort
scorer that needs prototypes also needs their file.
"""

from __future__ import annotations

import io
import json

import numpy as np

from ..explain.cache import FeatureArrays, save_feature_cache
from ..files import atomic_write_bytes
from ..results.case_record import CaseRecord, write_case_record
from ..results.layout import ResultsFolder
from ..scorers.registry import NEEDS_PROTOTYPES
from .pipeline import Prototypes
from .settings import ScoreSettings


def load_cached(folder: ResultsFolder, case_id: str, cache_key: str, settings: ScoreSettings) -> CaseRecord | None:
    """The case's saved record when it is still valid for ``cache_key``, else None (rescore it)."""
    path = folder.case_json(case_id)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not (isinstance(data, dict) and data.get("cache_key") == cache_key and data.get("status") == "ok"):
        return None
    if NEEDS_PROTOTYPES & set(settings.scorers) and not folder.prototypes(case_id).exists():
        return None
    return CaseRecord.from_dict(data, path)


def save_case(folder: ResultsFolder, record: CaseRecord, prototypes: Prototypes | None = None,
              features: FeatureArrays | None = None) -> None:
    """Write the case's record (with its prototypes and feature cache), each atomically: the record last, so it never lacks them."""
    save_feature_cache(folder.case_json(record.case_id), features)
    if prototypes is not None:
        buffer = io.BytesIO()
        np.savez(buffer, names=np.array(list(prototypes), dtype=str),
                 vectors=np.stack(list(prototypes.values())) if prototypes else np.zeros((0, 0), np.float32))
        atomic_write_bytes(folder.prototypes(record.case_id), buffer.getvalue())
    write_case_record(folder.case_json(record.case_id), record)


def load_prototypes(folder: ResultsFolder, case_id: str) -> Prototypes:
    """The class prototypes saved beside a case's JSON (empty when there are none)."""
    path = folder.prototypes(case_id)
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {str(name): vector for name, vector in zip(data["names"], data["vectors"])}
