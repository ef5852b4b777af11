"""``auv audit``: plant errors in a copy of a cohort, score it with every scorer, and measure detection.

For each repeat, a seeded ``fraction`` of the cases get one corruption each
(the kinds are dealt in turn, so each kind is planted about equally often).
The corrupted copies are written under ``OUT/planted`` (the user's files are
only read), every clean and corrupted case is scored once into ``OUT/scores``
(the usual resumable cache: a re-run, or more repeats, rescores nothing
already done), and each repeat's cohort (clean cases plus that repeat's
corrupted ones in their place) is then normalised and aggregated like any
cohort. Detection is measured at two levels, reported in this order:

* structures: for label corruptions, the corrupted structures against the
  structures of clean cases, on each scorer's per-class robust z-score:
  AUROC, and precision among the 20 most suspect structures (what a reviewer
  works through), pooled over the label kinds and then per kind;
* ``case``: corrupted cases against clean cases, per scorer and aggregation.

Outputs: ``audit_structures.csv`` (the structure figures), ``audit.csv``
(AUROC and precision at the top 10% and 20% per level, scorer, aggregation
and kind), ``scores.csv`` (every score of every unit), ``structures.csv``
(every audited structure's z, size and kind: what ``--fit`` fits its
detector on), ``planted.csv`` (what was planted where) and ``audit.html``;
with ``fit``, ``detector.json`` and its held-out figures on the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..cohort import ScoreSettings, add_cohort_scorers, class_matrix, cohort_scores, load_prototypes, score_cases
from ..datasets import CaseSpec
from ..errors import InputError
from ..imaging import read_image, write_array_like
from ..results import STRUCTURES_CSV, CaseRecord, ResultsFolder, json_number, safe_file_name
from ..results.structures import structure_scorers
from ..results.table import case_modalities
from ..scorers import AGGREGATES, ScoreScale
from ..scorers.registry import scale_options
from .corruptions import Corruption, applicable, draw_magnitude, eligible_classes, plant
from .detector import DETECTOR_JSON, audit_structures, fit_detector, held_out_figures, save_detector
from .metrics import detection_table, structure_detection
from .page import write_audit_page
from .settings import IMAGE_KINDS, LABEL_KINDS, AuditSettings

PLANTED_DIR = "planted"
SCORES_DIR = "scores"
STRUCTURE_FIGURES_CSV = "audit_structures.csv"


@dataclass(frozen=True)
class AuditFigures:
    """What an audit measured.

    Attributes:
        structures: per scorer and label kind (``label`` pools them), structure-level
            AUROC and precision at the top :data:`~auvcore.audit.metrics.TOP_STRUCTURES`
            (``audit_structures.csv``).
        figures: AUROC and precision at the top 10%/20% per level, scorer, aggregation and kind (``audit.csv``).
        held_out: the fitted detector's AUROC on held-out kinds and cases (empty without ``fit``).
    """

    structures: pd.DataFrame
    figures: pd.DataFrame
    held_out: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PlantedCase:
    repeat: int
    source: CaseSpec
    spec: CaseSpec
    corruption: Corruption


def plant_repeat(specs: Sequence[CaseSpec], settings: AuditSettings, repeat: int, out: Path,
                 target_classes: Collection[str] | None = None) -> list[PlantedCase]:
    """Choose this repeat's corrupted cases and write their corrupted copies (kept when already written).

    ``target_classes`` (class names) restricts label corruptions to those
    structures: the curation benchmark corrupts only the classes it trains.
    """
    rng = np.random.default_rng([settings.seed, repeat])
    count = max(1, round(settings.fraction * len(specs)))
    chosen = sorted(rng.choice(len(specs), size=min(count, len(specs)), replace=False).tolist())
    kinds = list(rng.permutation(settings.kinds))
    folder = out / PLANTED_DIR / f"r{repeat}"
    folder.mkdir(parents=True, exist_ok=True)
    planted = []
    for turn, index in enumerate(chosen):
        source = specs[index]
        if source.label is None:
            raise InputError(source.image, "has no label map; the audit plants label errors and scores classwise")
        image, labels = read_image(source.image), read_image(source.label)
        image_array, label_array = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels)
        targets = None if target_classes is None else [i for i, name in source.class_names.items() if name in target_classes]
        order = kinds[turn % len(kinds):] + kinds[: turn % len(kinds)]
        kind = next((k for k in order if applicable(k, label_array, targets)), None)
        if kind is None:
            continue
        case_rng = np.random.default_rng([settings.seed, repeat, index])
        target = None
        if targets is not None and kind in LABEL_KINDS:
            target = int(case_rng.choice(sorted(set(targets) & set(eligible_classes(label_array)))))
        magnitude = draw_magnitude(kind, settings.magnitudes.get(kind), case_rng)
        new_image, new_labels, corruption = plant(kind, image_array, label_array, case_rng, magnitude, target)
        stem = f"{safe_file_name(source.case_id)}~{kind}"
        image_path = source.image
        if kind in IMAGE_KINDS:
            image_path = folder / f"{stem}_image.nii.gz"
            if not image_path.exists():
                write_array_like(new_image, image, image_path)
        label_path = folder / f"{stem}_label.nii.gz"
        if not label_path.exists():
            write_array_like(new_labels, labels, label_path)
        spec = CaseSpec(f"{source.case_id}~{kind}~r{repeat}", Path(image_path), label_path, source.class_names,
                        source.label_names, source=source.source)
        planted.append(PlantedCase(repeat, source, spec, corruption))
    return planted


def _scoring_order(specs: Sequence[CaseSpec], planted: Sequence[PlantedCase]) -> list[CaseSpec]:
    """Each clean case followed by its corrupted copies: label-only copies then reuse its image embeddings."""
    ordered = []
    for spec in specs:
        ordered.append(spec)
        ordered.extend(p.spec for p in planted if p.source.case_id == spec.case_id and p.corruption.kind in LABEL_KINDS)
        ordered.extend(p.spec for p in planted if p.source.case_id == spec.case_id and p.corruption.kind in IMAGE_KINDS)
    return ordered


def _unit_scores(records: list[CaseRecord], kinds: list[str], planted_classes: list[set[str]],
                 prototypes: list[dict[str, np.ndarray]], scorers: Sequence[str], repeat: int) -> list[dict]:
    rows = []
    records = add_cohort_scorers(records, scorers, prototypes)
    ids = [r.case_id for r in records]
    for aggregate in AGGREGATES:
        values, _ = cohort_scores(records, scorers, aggregate)
        for name, column in values.items():
            rows.extend({"repeat": repeat, "level": "case", "unit": unit, "kind": kind, "scorer": name,
                         "aggregate": aggregate, "score": float(v)} for unit, kind, v in zip(ids, kinds, column))
    modalities = case_modalities(records)
    for name in scorers:
        matrix = class_matrix(records, name)
        z = ScoreScale.fit(matrix, "mean", **scale_options(name), modalities=modalities).class_z(matrix, modalities)
        for unit, kind, corrupted, (_, row) in zip(ids, kinds, planted_classes, z.iterrows()):
            if kind in IMAGE_KINDS:
                continue
            for class_name, value in row.items():
                if not math.isnan(value) and (kind == "clean" or class_name in corrupted):
                    rows.append({"repeat": repeat, "level": "class", "unit": f"{unit}/{class_name}",
                                 "kind": kind if class_name in corrupted else "clean", "scorer": name,
                                 "aggregate": "z", "score": float(value)})
    return rows


def kind_groups(kinds: Sequence[str]) -> dict[str, list[str]]:
    """The rows of the figures: each kind, then all label kinds, all image kinds, and everything."""
    groups = {k: [k] for k in kinds}
    for name, members in (("label", [k for k in kinds if k in LABEL_KINDS]), ("image", [k for k in kinds if k in IMAGE_KINDS])):
        if members:
            groups[name] = members
    groups["all"] = list(kinds)
    return groups


def run_audit(
    specs: Sequence[CaseSpec],
    out: str | Path,
    score_settings: ScoreSettings,
    settings: AuditSettings,
    progress: bool = True,
    emit: Callable[[str], None] | None = None,
    fit: bool = False,
) -> AuditFigures:
    """Plant, score and measure; with ``fit``, also fit the structure detector (``OUT/detector.json``).

    Returns the figures, also written to ``OUT`` (see the module's outputs).
    """
    out = Path(out)
    if len(specs) < 2:
        raise InputError(out, "an audit needs at least 2 cases (clean ones to compare the corrupted ones with)")
    if fit and not set(settings.kinds) & set(LABEL_KINDS):
        raise InputError(out, f"--fit needs label corruptions to fit on; add one of {', '.join(LABEL_KINDS)} to the kinds")
    out.mkdir(parents=True, exist_ok=True)
    planted = [p for repeat in range(settings.repeats) for p in plant_repeat(specs, settings, repeat, out)]
    pd.DataFrame([
        {"repeat": p.repeat, "case_id": p.spec.case_id, "source": p.source.case_id, **p.corruption.to_dict(),
         "class_names": " ".join(p.source.name_of(c) for c in p.corruption.classes),
         "image": str(p.spec.image), "label": str(p.spec.label)}
        for p in planted
    ]).to_csv(out / "planted.csv", index=False)

    scores_dir = out / SCORES_DIR
    records = {r.case_id: r for r in score_cases(_scoring_order(specs, planted), scores_dir, score_settings, progress=progress, emit=emit)}
    for record in records.values():
        if not record.ok:
            print(f"error: {record.case_id}: {record.error}")

    prototypes = {case_id: load_prototypes(ResultsFolder(scores_dir), case_id) for case_id in records}
    rows = []
    for repeat in range(settings.repeats):
        mine = {p.source.case_id: p for p in planted if p.repeat == repeat}
        cohort, kinds, corrupted = [], [], []
        for spec in specs:
            entry = mine.get(spec.case_id)
            cohort.append(records[(entry.spec if entry else spec).case_id])  # records are frozen: shared, not copied
            kinds.append(entry.corruption.kind if entry else "clean")
            corrupted.append({spec.name_of(c) for c in entry.corruption.classes} if entry else set())
        rows.extend(_unit_scores(cohort, kinds, corrupted, [prototypes[r.case_id] for r in cohort], score_settings.scorers, repeat))
    scores = pd.DataFrame(rows)
    scores.to_csv(out / "scores.csv", index=False)
    structures = audit_structures(scores, records, {spec.case_id: spec.source for spec in specs})
    structures.to_csv(out / STRUCTURES_CSV, index=False)
    label_kinds = [k for k in settings.kinds if k in LABEL_KINDS]
    result = AuditFigures(structure_detection(scores[scores["level"] == "class"], label_kinds),
                          detection_table(scores, kind_groups(settings.kinds)),
                          _fit(out, structures, score_settings.scorers, settings) if fit else {})
    result.structures.to_csv(out / STRUCTURE_FIGURES_CSV, index=False)
    result.figures.to_csv(out / "audit.csv", index=False)
    write_audit_page(out / "audit.html", result, planted_count=len(planted), cases=len(specs), settings=settings)
    return result


def _fit(out: Path, structures: pd.DataFrame, scorers: Sequence[str], settings: AuditSettings) -> dict[str, float]:
    """Fit the detector on the audited structures, judge it on held-out kinds and cases, save it; the held-out AUROC."""
    per_structure = [s for s in structure_scorers(scorers) if f"{s}_z" in structures.columns]
    corrupted = structures["kind"] != "clean"
    if not corrupted.any():
        raise InputError(out / STRUCTURES_CSV, "holds no corrupted structure to fit a detector on (plant label kinds)")
    held_out = held_out_figures(structures, structures["kind"], structures["scan"], per_structure)
    source = {"audit": str(out.resolve()), "structures": int(len(structures)), "corrupted": int(corrupted.sum()),
              "kinds": list(settings.kinds), "seed": settings.seed, "repeats": settings.repeats,
              "held_out_auroc": {name: json_number(value) for name, value in held_out.items()}}  # None where undefined
    save_detector(out / DETECTOR_JSON, fit_detector(structures, corrupted, per_structure, source))
    return held_out


def summary(figures: pd.DataFrame, level: str = "case") -> pd.DataFrame:
    """AUROC by scorer (and aggregation) and kind group: the case table ``auv audit`` prints."""
    part = figures[figures["level"] == level]
    table = part.pivot_table(index=["scorer", "aggregate"], columns="kind", values="auroc", sort=False)
    return table[[c for c in part["kind"].drop_duplicates() if c in table.columns]]

