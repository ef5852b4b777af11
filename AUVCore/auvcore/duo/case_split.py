"""Which cases a training run learns from, with which labels, and which it holds out for validation."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ..curation import load_exclusions
from ..datasets import CaseSpec, discover_cases, results_folder_cases
from ..errors import InputError
from ..results import ResultsFolder, labels_in_use
from .config import TrainConfig


class CaseSelection(NamedTuple):
    """The cases of a run: training, validation, excluded ids, and the line that says which labels they use."""

    train: list[CaseSpec]
    validation: list[CaseSpec]
    excluded: set[str]
    labels: str


def split_cases(specs: Sequence[CaseSpec], fraction: float, seed: int) -> tuple[list[CaseSpec], list[CaseSpec]]:
    """(training, validation): a seeded ``fraction`` held out, at least one case when there are two or more."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must lie in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(specs))
    n_val = 0 if fraction == 0 or len(specs) < 2 else max(1, round(fraction * len(specs)))
    held = set(order[:n_val].tolist())
    return [s for i, s in enumerate(specs) if i not in held], [s for i, s in enumerate(specs) if i in held]


def _sources(config: TrainConfig) -> tuple[list[CaseSpec], ResultsFolder | None, Path | None]:
    """The dataset's cases, the results folder whose corrections apply, and the exclusion list in force.

    A results folder as the dataset brings its cases, its corrections and (unless ``--exclusions`` names
    another) its ``exclusions.json``; an exclusion list inside a results folder brings that folder's corrections.
    """
    dataset = Path(config.dataset)
    exclusions = Path(config.exclusions) if config.exclusions else None
    if ResultsFolder.holds_results(dataset):
        folder = ResultsFolder(dataset)
        if exclusions is None and folder.exclusions.is_file():
            exclusions = folder.exclusions
        return results_folder_cases(folder), folder, exclusions
    beside = exclusions.parent if exclusions is not None else None
    return discover_cases(dataset), ResultsFolder(beside) if beside and ResultsFolder.holds_results(beside) else None, exclusions


def select_cases(config: TrainConfig) -> CaseSelection:
    """The dataset's cases after the exclusion list, each with its corrected label where it has one.

    Raises:
        InputError: for unlabelled cases, a missing exclusion list, one that excludes every case, or a
            correction that no longer fits its source.
    """
    specs, folder, exclusions = _sources(config)
    unlabelled = [s.case_id for s in specs if s.label is None]
    if unlabelled:
        raise InputError(config.dataset, f"training needs labels; no label for {', '.join(unlabelled[:10])}")
    excluded: set[str] = set()
    if exclusions is not None:
        if not exclusions.is_file():
            raise InputError(exclusions, "does not exist (the exclusion list given with --exclusions)")
        excluded = load_exclusions(exclusions).excluded() & {s.case_id for s in specs}
        specs = [s for s in specs if s.case_id not in excluded]
        if not specs:
            raise InputError(exclusions, "excludes every case of the dataset; nothing is left to train on")
    labels = "labels: the dataset's own"
    if folder is not None:
        in_use = labels_in_use(folder, {s.case_id: s.label for s in specs}, original=config.original_labels)
        specs = [CaseSpec(s.case_id, s.image, in_use.path(s.case_id), s.class_names) for s in specs]
        labels = in_use.summary(folder)
    if exclusions is not None:
        labels += f"; exclusions: {exclusions}"
    train_specs, val_specs = split_cases(specs, config.val_fraction, config.seed)
    return CaseSelection(train_specs, val_specs, excluded, labels)
