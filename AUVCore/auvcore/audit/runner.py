"""``auv audit``: plant errors in a copy of a cohort, score it with every scorer, and measure detection.

For each repeat, a seeded ``fraction`` of the cases get one corruption each
(the kinds are dealt in turn, so each kind is planted about equally often).
The corrupted copies are written under ``OUT/planted`` (the user's files are
only read), every clean and corrupted case is scored once into ``OUT/scores``
(the usual resumable cache: a re-run, or more repeats, rescores nothing
already done), and each repeat's cohort (clean cases plus that repeat's
corrupted ones in their place) is then normalised and aggregated like any
cohort. Detection is measured at two levels:

* ``case``: corrupted cases against clean cases, per scorer and aggregation;
* ``class``: for label corruptions, the corrupted structures against the
  structures of clean cases, on each scorer's per-class robust z-score.

Outputs: ``audit.csv`` (the figures), ``scores.csv`` (every score of every
unit), ``structures.csv`` (every audited structure's z, size and kind: what
``auv audit --fit`` fits its detector on), ``planted.csv`` (what was planted
where) and ``audit.html``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..cohort import ScoreSettings, add_cohort_scorers, class_matrix, cohort_scores, load_prototypes, score_cases
from ..datasets import CaseSpec
from ..errors import InputError
from ..imaging import read_image, write_array_like
from ..results import STRUCTURES_CSV, CaseRecord, ResultsFolder, safe_file_name
from ..scorers import AGGREGATES, PAPER_SCORER, ScoreScale
from .corruptions import IMAGE_KINDS, LABEL_KINDS, Corruption, applicable, eligible_classes, plant
from .detector import audit_structures
from .metrics import detection_table
from .page import write_audit_page
from .settings import AuditSettings

PLANTED_DIR = "planted"
SCORES_DIR = "scores"


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
        new_image, new_labels, corruption = plant(kind, image_array, label_array, case_rng, settings.magnitudes.get(kind), target)
        stem = f"{safe_file_name(source.case_id)}~{kind}"
        image_path = source.image
        if kind in IMAGE_KINDS:
            image_path = folder / f"{stem}_image.nii.gz"
            if not image_path.exists():
                write_array_like(new_image, image, image_path)
        label_path = folder / f"{stem}_label.nii.gz"
        if not label_path.exists():
            write_array_like(new_labels, labels, label_path)
        spec = CaseSpec(f"{source.case_id}~{kind}~r{repeat}", Path(image_path), label_path, source.class_names)
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
    for name in scorers:
        matrix = class_matrix(records, name)
        z = ScoreScale.fit(matrix, "mean", negative_log=name == PAPER_SCORER).class_z(matrix)
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
) -> pd.DataFrame:
    """Plant, score and measure; returns the figures (also written to ``OUT/audit.csv``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if len(specs) < 2:
        raise InputError(out, "an audit needs at least 2 cases (clean ones to compare the corrupted ones with)")
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
    audit_structures(scores, records).to_csv(out / STRUCTURES_CSV, index=False)
    figures = detection_table(scores, kind_groups(settings.kinds))
    figures.to_csv(out / "audit.csv", index=False)
    write_audit_page(out / "audit.html", figures, planted_count=len(planted), cases=len(specs), settings=settings)
    return figures


def summary(figures: pd.DataFrame, level: str = "case") -> pd.DataFrame:
    """AUROC by scorer (and aggregation) and kind group: the table ``auv audit`` prints."""
    part = figures[figures["level"] == level]
    table = part.pivot_table(index=["scorer", "aggregate"], columns="kind", values="auroc", sort=False)
    return table[[c for c in part["kind"].drop_duplicates() if c in table.columns]]
