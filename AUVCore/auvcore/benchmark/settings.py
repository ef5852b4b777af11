"""The curation benchmark's settings and defaults (torch-free: the ``auv`` parser reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..duo.config import DUO_FORMS, TrainConfig
from ..scales import AGGREGATES

#: The filters compared by default: the paper's measure with the paper's AUV, the label-aware scorers, the
#: paper's baselines and confident learning (``cleanlab``, on out-of-fold probabilities the benchmark trains itself).
DEFAULT_FILTERS = ("auv@paper", "label_check", "mahalanobis", "consistency", "agreement", "variance", "fisher", "cleanlab")


@dataclass(frozen=True)
class BenchmarkSettings:
    """How the benchmark plants, filters and trains (the training is deliberately small: it runs on a CPU)."""

    rate: float = 0.3
    keep: float = 0.9
    test_fraction: float = 0.3
    split: str = "ordered"
    seeds: tuple[int, ...] = (0, 1, 2)
    filters: tuple[str, ...] = DEFAULT_FILTERS
    #: How the filters' class values become case scores (``auvcore.scales``), for a filter without its own
    #: ``@aggregate``. ``calibrated`` found label errors best at case level in ``auv audit`` on the slab cohort.
    aggregate: str = "calibrated"
    #: The label corruptions planted (one per planted case, on a trained class when ``classes`` is given);
    #: None: every label kind of the audit.
    kinds: tuple[str, ...] | None = None
    magnitudes: dict[str, float] = field(default_factory=dict)
    #: The seed of which cases are planted and how (the training seeds are ``seeds``).
    plant_seed: int = 0
    epochs: int = 10
    steps_per_epoch: int = 25
    base_filters: int = 16
    #: Slices per training step; None lets the 2d plan pick it from the data.
    batch: int | None = None
    #: (rows, columns) mm to train at; None: the data's. Coarser makes the benchmark affordable on a CPU.
    in_plane_spacing: tuple[float, float] | None = None
    lr: float = 0.01
    #: The DUO form of ``duo+filter`` (``auv train``'s default); every form in ``duo_forms`` is an arm ``duo:<form>``.
    duo_form: str = TrainConfig.duo_form
    #: None: ``duo_form`` alone (comparing every form, :data:`DUO_FORMS`, trains five more models a seed).
    duo_forms: tuple[str, ...] | None = None
    #: Share of a DUO arm's epochs on the labels as given before the noise head purifies them (``auv train --duo-warmup``).
    duo_warmup: float = TrainConfig.duo_warmup
    device: str = "auto"
    classes: tuple[str, ...] | None = None
    #: Folds of the out-of-fold models ``filter:cleanlab`` reads (trained like an arm, without DUO).
    oof_folds: int = 3

    def __post_init__(self) -> None:
        if self.duo_forms is None:
            object.__setattr__(self, "duo_forms", (self.duo_form,))


def split_filter(name: str, default_aggregate: str) -> tuple[str, str]:
    """``(scorer, aggregate)`` of a filter written ``scorer`` or ``scorer@aggregate``.

    Example:
        >>> split_filter("auv@paper", "calibrated"), split_filter("label_check", "calibrated")
        (('auv', 'paper'), ('label_check', 'calibrated'))
    """
    scorer, _, aggregate = name.partition("@")
    aggregate = aggregate or default_aggregate
    if aggregate not in AGGREGATES:
        raise ValueError(f"filter {name!r}: unknown aggregate {aggregate!r}; choose from {', '.join(AGGREGATES)}")
    return scorer, aggregate
