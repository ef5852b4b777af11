"""``auv oof``: K-fold out-of-fold class probabilities of a cohort, from the bundled trainer.

The cases are dealt into K folds (:func:`auvcore.oof.deal_folds`); for each
fold a model is trained on the other folds' cases (the fold's cases go in an
exclusion list, so the trainer's own case selection does the rest) and
predicts the fold's cases (:func:`auvcore.duo.predict.class_probabilities`).
Every case thus gets probabilities from a model that never saw its label,
which is what confident learning (the ``cleanlab`` scorer) needs.

Layout of ``OUT`` (:mod:`auvcore.oof`): ``oof.json``, ``probabilities/``, and
``folds/fold_<k>/`` (the run) with ``folds/fold_<k>.exclusions.json``. An
interrupted run resumes: a fold whose cases all have probability files is
skipped, a fold with a checkpoint continues training from it.

Example:
    >>> config = TrainConfig(dataset="slabs/manifest.csv", out="oof", config="2d", epochs=5, val_fraction=0.0)  # doctest: +SKIP
    >>> make_oof(config, folds=3)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..curation import ExclusionList, save_exclusions
from ..datasets import discover_cases
from ..devices import resolve_device
from ..oof import PROBABILITIES_DIR, deal_folds, write_case_probabilities, write_oof_manifest
from ..results.layout import safe_file_name
from . import checkpoint as ckpt
from .config import TrainConfig
from .predict import class_probabilities, load_model
from .trainer import train


def make_oof(config: TrainConfig, folds: int, emit: Callable[[str], None] = print) -> Path:
    """Train ``folds`` models on ``config.dataset`` (``config.out`` is the OOF folder) and write every case's
    out-of-fold probabilities; returns ``oof.json``. ``config.exclusions`` must be unset: the folds use it."""
    if config.exclusions:
        raise ValueError("out-of-fold training excludes each fold itself; it takes no exclusion list")
    out = Path(config.out)
    specs = discover_cases(config.dataset)
    fold_of = deal_folds([s.case_id for s in specs], folds, config.seed)
    classes: dict[str, list[str]] = {}
    device = resolve_device(config.device)
    for fold in range(folds):
        held = [s for s in specs if fold_of[s.case_id] == fold]
        run = out / "folds" / f"fold_{fold}"
        done = [out / PROBABILITIES_DIR / f"{safe_file_name(s.case_id)}.npz" for s in held]
        if (run / ckpt.MODEL).exists() and all(path.exists() for path in done):
            _, plan = load_model(run, device)
            classes.update({s.case_id: list(plan.classes) for s in held})
            emit(f"auv oof: fold {fold + 1}/{folds} already done")
            continue
        exclusions = run.parent / f"fold_{fold}.exclusions.json"
        decisions = ExclusionList()
        for spec in held:
            decisions.exclude(spec.case_id, None, note=f"held out: out-of-fold fold {fold}")
        save_exclusions(exclusions, decisions)
        emit(f"auv oof: fold {fold + 1}/{folds}: training on {len(specs) - len(held)} cases, predicting {len(held)}")
        train(replace(config, out=str(run), exclusions=str(exclusions), resume=(run / ckpt.LATEST).exists()))
        model, plan = load_model(run, device)
        for spec in held:
            probabilities, case = class_probabilities(model, plan, spec.image, device)
            assert case.oriented is not None
            write_case_probabilities(out, spec.case_id, plan.classes, probabilities, case.oriented)
            classes[spec.case_id] = list(plan.classes)
    training = {k: v for k, v in config.to_dict().items() if k not in ("out", "exclusions", "resume")}
    return write_oof_manifest(out, folds, config.seed, fold_of, classes, training)
