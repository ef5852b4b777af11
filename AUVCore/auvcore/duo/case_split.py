"""Which cases a training run learns from and which it holds out for validation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..curation import load_exclusions
from ..datasets import CaseSpec, discover_cases
from ..errors import InputError
from .config import TrainConfig


def split_cases(specs: Sequence[CaseSpec], fraction: float, seed: int) -> tuple[list[CaseSpec], list[CaseSpec]]:
    """(training, validation): a seeded ``fraction`` held out, at least one case when there are two or more."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must lie in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(specs))
    n_val = 0 if fraction == 0 or len(specs) < 2 else max(1, round(fraction * len(specs)))
    held = set(order[:n_val].tolist())
    return [s for i, s in enumerate(specs) if i not in held], [s for i, s in enumerate(specs) if i in held]


def select_cases(config: TrainConfig) -> tuple[list[CaseSpec], list[CaseSpec], set[str]]:
    """(training, validation, excluded ids) of the dataset after the exclusion list."""
    specs = discover_cases(config.dataset)
    unlabelled = [s.case_id for s in specs if s.label is None]
    if unlabelled:
        raise InputError(config.dataset, f"training needs labels; no label for {', '.join(unlabelled[:10])}")
    excluded: set[str] = set()
    if config.exclusions:
        path = Path(config.exclusions)
        if not path.is_file():
            raise InputError(path, "does not exist (the exclusion list given with --exclusions)")
        excluded = load_exclusions(path).excluded() & {s.case_id for s in specs}
        specs = [s for s in specs if s.case_id not in excluded]
        if not specs:
            raise InputError(path, "excludes every case of the dataset; nothing is left to train on")
    train_specs, val_specs = split_cases(specs, config.val_fraction, config.seed)
    return train_specs, val_specs, excluded
