"""The cohort stage: from the cases' records to case scores, ``reference.json`` and the results table.

Two ways to give the cases their scores:

* :func:`normalise_cohort`: over the cases themselves (the paper's min-max of
  ``-log S``, and each scorer's scale fitted on the cohort), saving the scales
  as ``reference.json``;
* :func:`place_on_reference`: on a saved cohort's scales. The cohort scorers
  compare cases with each other, so they have no value here.

Either way each case file whose scores changed is rewritten, and
``results.csv`` / ``results.parquet`` and ``structures.csv`` are written.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..results.case_record import CaseRecord, ScorerValues, json_number, write_case_record
from ..results.layout import ResultsFolder
from ..results.reference import SavedReference, save_reference
from ..results.structures import cohort_lookalikes, structure_scales, structure_scorers, structures_table, write_structures
from ..results.table import case_modalities, class_matrix, results_table, write_results
from ..scales import Aggregate, CohortWarning, Lookalikes, ScoreScale, cohort_auv, warn_if_class_sets_differ
from ..scorers import CLEANLAB, COHORT_SCORERS, CROSS_CASE, LABEL_CHECK, LABEL_CHECK_PARTS, PAPER_SCORER, label_check_scores
from ..scorers.registry import scale_options
from .cache import load_prototypes
from .pipeline import Prototypes
from .settings import ScoreSettings, scoring_identity

if TYPE_CHECKING:
    import pandas as pd


def add_cohort_scorers(records: Sequence[CaseRecord], scorers: Sequence[str], prototypes: Sequence[Prototypes],
                       oof: str | Path | None = None) -> list[CaseRecord]:
    """The records with the cohort scorers' class values (``prototype``, ``mahalanobis``, ``identity``, ``label_check``,
    and ``cleanlab`` from the ``auv oof`` folder ``oof``) in ``scores``."""
    records = list(records)
    if CLEANLAB in scorers:
        from ..scorers.cleanlab_scores import cleanlab_scores

        if oof is None:
            raise ValueError("the cleanlab scorer needs the out-of-fold folder of `auv oof`")
        records = _with_class_values(records, CLEANLAB, cleanlab_scores(records, oof))
    for name in scorers:
        if name in COHORT_SCORERS:
            records = _with_class_values(records, name, COHORT_SCORERS[name](prototypes, case_modalities(records)))
    if LABEL_CHECK in scorers:
        combined = label_check_scores({part: class_matrix(records, part) for part in LABEL_CHECK_PARTS}, case_modalities(records))
        records = _with_class_values(records, LABEL_CHECK, [row.dropna().to_dict() for _, row in combined.values.iterrows()])
    return records


def _with_class_values(records: Sequence[CaseRecord], scorer: str, values: Sequence[dict[str, float]]) -> list[CaseRecord]:
    return [
        record.updated(scores={**record.scores, scorer: ScorerValues({k: json_number(v) for k, v in sorted(classes.items())})})
        if record.ok else record
        for record, classes in zip(records, values)
    ]


def cohort_scores(
    records: Sequence[CaseRecord],
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
    modalities = case_modalities(records)
    for name in scorers:
        matrix = class_matrix(records, name)
        if scales is not None:
            scale = scales.get(name)
            values[name] = scale.place(matrix, modalities) if scale is not None else np.full(len(records), np.nan)
            continue
        fitted[name] = ScoreScale.fit(matrix, aggregate, **scale_options(name), modalities=modalities)
        values[name] = fitted[name].place(matrix, modalities)
    return values, fitted


def total_scales(records: Sequence[CaseRecord]) -> np.ndarray:
    """Each case's S, the paper's sum over classes (NaN for a case without one)."""
    return np.array([np.nan if r.S is None else r.S for r in records], dtype=np.float64)


def scorer_case_scores(records: Sequence[CaseRecord], scorer: str, aggregate: Aggregate) -> np.ndarray:
    """One scorer's case scores over ``records`` with ``aggregate``; ``auv`` with ``paper`` is the paper's AUV."""
    if scorer == PAPER_SCORER and aggregate == "paper":
        return cohort_auv(total_scales(records)).values
    return cohort_scores(records, [scorer], aggregate)[0][scorer]


def normalise_cohort(records: Sequence[CaseRecord], out: str | Path, settings: ScoreSettings) -> "pd.DataFrame":
    """Score the cases over themselves, save their scales as ``reference.json``; returns the results table."""
    folder = ResultsFolder(Path(out))
    scored = add_cohort_scorers(records, settings.scorers, [load_prototypes(folder, r.case_id) for r in records], settings.oof)
    paper_auv = settings.aggregate == "paper"
    if paper_auv:
        warn_if_class_sets_differ(class_matrix(scored, PAPER_SCORER), "paper")
    others = [n for n in settings.scorers if not (paper_auv and n == PAPER_SCORER)]
    values, scales = cohort_scores(scored, others, settings.aggregate)
    paper = cohort_auv(total_scales(scored))
    auv = paper.values if paper_auv else values.pop(PAPER_SCORER)
    if paper.reference.n_cases:  # a cohort where no case scored has no scale to save
        kept = {name: scale for name, scale in scales.items() if name not in CROSS_CASE}
        placeable = [name for name in settings.scorers if name not in CROSS_CASE]
        save_reference(folder.reference, paper.reference, settings.backbone, settings.mode, scoring_identity(settings),
                       settings.aggregate, kept, structure_scales(scored, placeable), cohort_lookalikes(scored))
    return _write_scores(records, scored, folder, auv, values, settings)


def place_on_reference(records: Sequence[CaseRecord], out: str | Path, settings: ScoreSettings, saved: SavedReference) -> "pd.DataFrame":
    """Place the cases on a saved cohort's scales (clipped to [0, 1]); returns the results table."""
    paper_auv = settings.aggregate == "paper"
    others = [n for n in settings.scorers if not (paper_auv and n == PAPER_SCORER) and n not in CROSS_CASE]
    values, _ = cohort_scores(records, others, settings.aggregate, saved.scales)
    values.update({n: np.full(len(records), np.nan) for n in settings.scorers if n in CROSS_CASE})
    auv = saved.scale.place(total_scales(records)) if paper_auv else values.pop(PAPER_SCORER)
    return _write_scores(records, records, ResultsFolder(Path(out)), auv, values, settings, _saved_structure_scales(saved, settings),
                         saved.lookalikes)


def _saved_structure_scales(saved: SavedReference, settings: ScoreSettings) -> dict[str, ScoreScale]:
    """The per-class scales a placed case's structures get their z from; warns naming the scorers that have none."""
    if saved.structure_scales:
        scales = saved.structure_scales
    else:  # saved before they were kept: only an aggregation of mean, max, calibrated or fisher saved class statistics
        scales = {name: scale for name, scale in saved.scales.items() if scale.class_stats}
    missing = [name for name in structure_scorers(settings.scorers) if name not in CROSS_CASE and name not in scales]
    if missing:
        warnings.warn(f"{saved.path} holds no per-class statistics of {', '.join(missing)} (it was saved by an older auvcore with "
                      f"--aggregate {saved.aggregate}), so {', '.join(f'{n}_z' for n in missing)} in structures.csv stay empty: "
                      "score the reference cohort again with this auvcore (its cache makes that quick) to fill them",
                      CohortWarning, stacklevel=2)
    return scales


def _write_scores(before: Sequence[CaseRecord], records: Sequence[CaseRecord], folder: ResultsFolder, auv: np.ndarray,
                  values: dict[str, np.ndarray], settings: ScoreSettings, scales: dict[str, ScoreScale] | None = None,
                  lookalikes: Lookalikes | None = None) -> "pd.DataFrame":
    """Put the case scores into the records, rewrite the case files that changed, write the results and structures tables.

    The structures' z are against ``scales`` (a saved cohort's) when given, else against the cases themselves.
    With a detector, each structure gets its ``detector`` probability and each case the largest of its structures'.
    """
    final = [
        record.updated(auv=json_number(auv[index]),
                       case_scores={name: json_number(column[index]) for name, column in values.items()})
        if record.ok else record
        for index, record in enumerate(records)
    ]
    structures = structures_table(final, settings.scorers, scales, lookalikes)
    if settings.detector:
        from ..audit.detector import load_detector  # the audit package imports this one

        structures["detector"] = load_detector(settings.detector).predict(structures) if len(structures) else []
        worst = structures.groupby("case_id")["detector"].max()
        final = [r.updated(case_scores={**r.case_scores, "detector": json_number(worst.get(r.case_id))}) if r.ok else r for r in final]
    for previous, record in zip(before, final):
        if record.ok and record != previous:
            write_case_record(folder.case_json(record.case_id), record)
    table = results_table(final)
    write_results(table, folder.root)
    write_structures(structures, folder.root)
    return table
