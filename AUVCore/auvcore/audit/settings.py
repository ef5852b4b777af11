"""What ``auv audit`` plants: the share of cases, the corruption kinds and magnitudes, the repeats and the seed."""

from __future__ import annotations

from dataclasses import dataclass, field

from .corruptions import KINDS


@dataclass(frozen=True)
class AuditSettings:
    """What to plant.

    Attributes:
        fraction: share of the cases corrupted in each repeat (at least one case).
        kinds: the corruption kinds (:data:`auvcore.audit.corruptions.KINDS`).
        magnitudes: kind -> magnitude, overriding the defaults.
        repeats: independent draws of the corrupted subset; more repeats give
            more corrupted cases per kind at the cost of scoring them.
        seed: the seed of every draw.
    """

    fraction: float = 0.3
    kinds: tuple[str, ...] = KINDS
    magnitudes: dict[str, float] = field(default_factory=dict)
    repeats: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        unknown = set(self.kinds) - set(KINDS) | set(self.magnitudes) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown or no corruption kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
        if self.repeats < 1:
            raise ValueError("repeats must be at least 1")
