"""The per-case cache: a case's JSON is its cache entry, its class prototypes lie beside it.

A record is reused when its ``cache_key`` (content hashes of image and label,
the weights, the settings) matches and it was scored without error; a cohort
scorer that needs prototypes also needs their file.

A record of the same model pass made with other scorers (the key of its own
scorer set matches) is reused too when it holds every per-case scorer asked
for: ``auv score`` after ``auv score --scorers all`` runs no model. One that
lacks some is scored again, and :func:`look_up` says which scorers it lacked:
a case file keeps the scores of a model pass, not the embeddings and logits
they came from, so a new scorer needs the pass again.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass

import numpy as np

from ..explain.cache import FeatureArrays, save_feature_cache
from ..files import atomic_write_bytes
from ..results.case_record import CaseRecord, write_case_record
from ..results.layout import ResultsFolder
from ..scorers.registry import CROSS_CASE, NEEDS_PROTOTYPES, PAPER_SCORER
from .pipeline import CaseIdentity, Prototypes
from .settings import ScoreSettings


@dataclass(frozen=True)
class CacheLookup:
    """What the cache holds for a case: a record to reuse, or none; ``lacking``: the scorers asked for that a saved
    record of the same model pass was made without (so the pass runs again), empty when there is no such record."""

    record: CaseRecord | None
    lacking: tuple[str, ...] = ()


def saved_scorers(saved_settings: dict) -> tuple[str, ...]:
    """The per-case scorers a record was scored with (its settings' ``scorers``; ``auv`` alone when absent)."""
    return tuple(saved_settings.get("scorers") or (PAPER_SCORER,))


def lacking_scorers(saved_settings: dict, settings: ScoreSettings, has_prototypes: bool) -> tuple[str, ...]:
    """The scorers of ``settings`` that a record scored with ``saved_settings`` (the same pass) has no values for.

    Example:
        >>> lacking_scorers({"scorers": ["auv", "agreement"]}, ScoreSettings(scorers=("auv", "agreement", "mahalanobis")), False)
        ('mahalanobis',)
    """
    asked = [name for name in settings.scorers if name not in CROSS_CASE]  # the cohort stage makes those
    lacking = [name for name in asked if name not in saved_scorers(saved_settings)]
    if not has_prototypes:
        lacking += [name for name in settings.scorers if name in NEEDS_PROTOTYPES and name not in lacking]
    return tuple(lacking)


def same_pass(record: CaseRecord, settings: ScoreSettings) -> bool:
    """Whether a saved record was scored as ``settings`` ask (its scorers may be more than asked for)."""
    asked = {k: v for k, v in settings.key_dict().items() if k != "scorers"}
    saved = {k: v for k, v in record.settings.items() if k != "scorers"}
    return (record.backbone == settings.backbone and saved == asked
            and not lacking_scorers(record.settings, settings, has_prototypes=True))


def look_up(folder: ResultsFolder, case_id: str, identity: CaseIdentity, settings: ScoreSettings) -> CacheLookup:
    """The case's saved record when it is still valid for ``settings`` (or made by the same model pass with every
    scorer asked for), else why not (:class:`CacheLookup`)."""
    path = folder.case_json(case_id)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return CacheLookup(None)
    if not (isinstance(data, dict) and data.get("status") == "ok" and isinstance(data.get("settings"), dict)):
        return CacheLookup(None)
    has_prototypes = folder.prototypes(case_id).exists()
    if data.get("cache_key") == identity.key(settings):
        if NEEDS_PROTOTYPES & set(settings.scorers) and not has_prototypes:
            return CacheLookup(None)
        return CacheLookup(CaseRecord.from_dict(data, path))
    saved = saved_scorers(data["settings"])
    try:
        as_saved = dataclasses.replace(settings, scorers=saved, detector=None, oof=None)
    except ValueError:  # scorers this version does not know
        return CacheLookup(None)
    if data.get("cache_key") != identity.key(as_saved):
        return CacheLookup(None)  # another image, label, weights or settings: a new pass
    lacking = lacking_scorers(data["settings"], settings, has_prototypes)
    if lacking:
        return CacheLookup(None, lacking)
    return CacheLookup(without_other_cohorts(CaseRecord.from_dict(data, path), settings))


def without_other_cohorts(record: CaseRecord, settings: ScoreSettings) -> CaseRecord:
    """The record without the values of cohort scorers not asked for: they were made over another cohort (the cohort
    stage remakes those asked for)."""
    kept = {name: values for name, values in record.scores.items() if name not in CROSS_CASE or name in settings.scorers}
    return record if kept == record.scores else record.updated(scores=kept)


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
