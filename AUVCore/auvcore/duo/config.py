"""The settings of a training run, and their defaults: the one source for ``auv train`` and the Slicer module.

Torch-free, so the Slicer module can read the defaults without loading PyTorch.
A field's default is also the class attribute of the same name.

Example:
    >>> TrainConfig.epochs, TrainConfig.backbone
    (1000, 'dynunet')
    >>> TrainConfig(dataset="Task01", out="run", epochs=5).to_dict()["epochs"]
    5
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

#: The forms of DUO (:mod:`auvcore.duo.forms`); ``weights`` has no noise head.
DuoForm = Literal["paper", "hard_dice", "disagree", "detached", "boundary", "weights"]
DUO_FORMS: tuple[str, ...] = ("paper", "hard_dice", "disagree", "detached", "boundary", "weights")
NOISE_FORMS = frozenset(DUO_FORMS) - {"weights"}

#: Settings a resumed run may change; everything else comes from the checkpoint.
RESUMABLE_OVERRIDES = ("epochs", "device", "workers", "log_every")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints).

    ``dataset`` is an nnU-Net raw dataset folder or a CSV manifest, ``out`` the
    run folder; the other fields are ``auv train``'s options of the same name.
    """

    dataset: str
    out: str
    backbone: str = "dynunet"
    #: ``3d`` or ``2d`` (axial slices: practical on a CPU), as nnU-Net's configurations.
    config: str = "3d"
    duo: bool = True
    #: Which DUO (:mod:`auvcore.duo.forms`); ``paper`` is SPEC §6's literal form. ``disagree`` tied ``paper`` on the
    #: curation benchmark's selection seeds and, with ``boundary``, never lost to no DUO by a seed-to-seed sd
    #: (docs/science/curation-benchmark.md).
    duo_form: str = "disagree"
    #: Share of the epochs DUO trains on the labels as given before the noise head purifies them (:mod:`auvcore.duo.forms`).
    #: Without it ``paper`` and ``disagree`` collapsed on a selection seed of the curation benchmark
    #: (docs/science/curation-benchmark.md).
    duo_warmup: float = 0.4
    epochs: int = 1000
    steps_per_epoch: int = 250
    #: Patches per step; None lets the plan pick it from the data (3d: 2; 2d: :func:`auvcore.duo.plan.default_batch_2d`).
    batch: int | None = None
    patch: tuple[int, int, int] | None = None
    #: Target (rows, columns) spacing in mm; None: the training cases' median (nnU-Net's plan).
    #: Coarser than the data trades detail for speed (4x fewer pixels at twice the spacing).
    in_plane_spacing: tuple[float, float] | None = None
    lr: float = 0.01
    device: str = "auto"
    seed: int = 12345
    val_every: int = 5
    val_fraction: float = 0.2
    exclusions: str | None = None
    #: Train on the source labels even where the results folder holds corrections (``--original-labels``).
    original_labels: bool = False
    classes: tuple[str, ...] | None = None
    base_filters: int = 32
    workers: int = 0
    amp: bool = True
    log_every: int = 10
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["patch"] = None if self.patch is None else list(self.patch)
        data["in_plane_spacing"] = None if self.in_plane_spacing is None else list(self.in_plane_spacing)
        data["classes"] = None if self.classes is None else list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        # Runs made before these settings existed (and before corrections were read: they keep their labels).
        data = {"config": "3d", "duo_form": "paper", "duo_warmup": 0.0, "original_labels": True, **data}
        data["patch"] = None if data.get("patch") is None else tuple(data["patch"])
        data["in_plane_spacing"] = None if data.get("in_plane_spacing") is None else tuple(data["in_plane_spacing"])
        data["classes"] = None if data.get("classes") is None else tuple(data["classes"])
        return cls(**data)
