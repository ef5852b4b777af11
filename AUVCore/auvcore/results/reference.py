"""A scored cohort's saved scales (``reference.json``), to place new cases on them.

The cohort stage of ``auv score`` writes the file (:func:`save_reference`);
``auv score --reference``, the report and the Slicer module read it
(:func:`load_reference`, the one validation). A case is placed only when it was
scored the same way as the cohort: same backbone, mode, weights and settings.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import write_json_atomic
from ..scales import CohortReference, Lookalikes, ScoreScale
from .layout import REFERENCE_JSON

#: Scoring settings (of ``ScoreSettings.key_dict``) that choose which extra scorers run, not the values
#: the saved scales give: a reference saved with other values of these still applies.
SETTINGS_NOT_IN_SCALE = frozenset({"scorers"})


@dataclass(frozen=True)
class SavedReference:
    """A scored cohort's AUV scale as ``auv score`` saves it in ``reference.json``.

    A new case is placed on the cohort's scale only when it was scored the
    same way: same backbone, mode and value-changing settings.
    """

    scale: CohortReference
    backbone: str
    mode: str
    settings: dict[str, Any]
    path: Path
    aggregate: str = "paper"
    #: The scales of the other scorers and aggregations (:class:`auvcore.scales.ScoreScale`), by scorer.
    scales: dict[str, ScoreScale] = field(default_factory=dict)
    #: Each per-structure scorer's per-class scale (``structures.csv``'s ``<scorer>_z``), whatever the aggregate;
    #: empty in files saved before they were kept.
    structure_scales: dict[str, ScoreScale] = field(default_factory=dict)
    #: How many cases of each modality hold each class (what a placed structure is judged against); None before.
    lookalikes: Lookalikes | None = None

    def check_compatible(self, backbone: str, mode: str, settings: dict[str, Any] | None = None) -> None:
        """Raise InputError (naming the reference file) when a case was scored differently."""
        differences = []
        if backbone != self.backbone:
            differences.append(f"backbone {backbone!r} (reference: {self.backbone!r})")
        if mode != self.mode:
            differences.append(f"mode {mode!r} (reference: {self.mode!r})")
        for key in sorted(set(settings or {}) & set(self.settings) - SETTINGS_NOT_IN_SCALE):
            if settings[key] != self.settings[key]:
                differences.append(f"setting {key}={settings[key]!r} (reference: {self.settings[key]!r})")
        if differences:
            raise InputError(self.path, "was made with other scoring settings; the case has " + ", ".join(differences))

    def place(self, total_scale: float, backbone: str, mode: str, settings: dict[str, Any] | None = None) -> float:
        """AUV of one case with total scale S on this cohort's scale, in [0, 1] (NaN for NaN S).

        Example:
            >>> saved = SavedReference(CohortReference(0.0, 1.0, 12), "litemedsam", "classwise", {}, Path("reference.json"))
            >>> round(saved.place(math.exp(-0.25), "litemedsam", "classwise"), 6)
            0.25
        """
        self.check_compatible(backbone, mode, settings)
        return float(self.scale.place(total_scale)[0])


def load_reference(path: str | Path) -> SavedReference:
    """Read ``reference.json`` (or the one inside a results folder).

    Raises:
        InputError: naming the file, when it is missing, not JSON, lacks a
            field, or holds no range (no case of the cohort was scored).
    """
    path = Path(path)
    if path.is_dir():
        path = path / REFERENCE_JSON
    give = f"give the results folder of `auv score` or its {REFERENCE_JSON}"
    if path.is_file() and path.suffix.lower() in (".csv", ".parquet"):
        raise InputError(path, f"is a table, not a cohort reference: {give} (`auv score` writes it beside results.csv)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "does not exist (`auv score` writes it beside results.csv)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"is not valid JSON ({error}), so not a cohort reference: {give}") from None
    try:
        scale = CohortReference.from_dict(data)
        backbone, mode, settings = str(data["backbone"]), str(data["mode"]), data.get("settings") or {}
    except (TypeError, KeyError, ValueError) as error:
        raise InputError(path, f"is not a cohort reference of `auv score` (missing or malformed {error}): {give}") from None
    if not isinstance(settings, dict):
        raise InputError(path, "has \"settings\" that is not an object")
    try:
        scales = {name: ScoreScale.from_dict(value) for name, value in (data.get("scales") or {}).items()}
        structure_scales = {name: ScoreScale.from_dict(value) for name, value in (data.get("structure_scales") or {}).items()}
        lookalikes = Lookalikes.from_dict(data["lookalikes"]) if data.get("lookalikes") else None
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        raise InputError(path, f"has malformed \"scales\" ({error})") from None
    if not (math.isfinite(scale.a_min) and math.isfinite(scale.a_max)) or scale.a_min > scale.a_max or scale.n_cases < 1:
        raise InputError(path, f"holds no usable range (a_min={scale.a_min}, a_max={scale.a_max}, n_cases={scale.n_cases}); was any case of the cohort scored?")
    return SavedReference(scale, backbone, mode, settings, path, str(data.get("aggregate", "paper")), scales,
                          structure_scales, lookalikes)


def save_reference(
    path: str | Path,
    scale: CohortReference,
    backbone: str,
    mode: str,
    settings: dict[str, Any],
    aggregate: str,
    scales: dict[str, ScoreScale],
    structure_scales: dict[str, ScoreScale] | None = None,
    lookalikes: Lookalikes | None = None,
) -> None:
    """Write ``reference.json`` atomically; ``settings`` is the scoring identity (settings and weights)."""
    data = {
        **scale.to_dict(),
        "backbone": backbone,
        "mode": mode,
        "settings": settings,
        "aggregate": aggregate,
        "scales": {name: value.to_dict() for name, value in scales.items()},
    }
    if structure_scales:
        data["structure_scales"] = {name: value.to_dict() for name, value in structure_scales.items()}
    if lookalikes is not None:
        data["lookalikes"] = lookalikes.to_dict()
    write_json_atomic(path, data)
