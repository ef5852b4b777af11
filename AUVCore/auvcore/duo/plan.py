"""The dataset fingerprint that fixes preprocessing, as nnU-Net plans it.

One pass over the training cases gives: the class set (by name, across cases
whose label files may number classes differently), the target spacing (the
median spacing), the CT intensity statistics of the foreground voxels (the
0.5 and 99.5 percentiles, mean and standard deviation) and a default patch
size. The plan is JSON-able: it is saved beside the run and inside every
checkpoint so that ``auv predict`` preprocesses exactly as training did.

Two configurations, as nnU-Net has them:

* ``3d``: volumes resampled to the median spacing, 3D patches;
* ``2d``: axial slices. Only the in-plane spacing is resampled (each case
  keeps its slice spacing: spacing 0 on that axis), the patch is one slice
  deep and as large as the median slice (up to :data:`MAX_PATCH_2D`), and the
  batch is picked so that a batch holds about as many voxels as a 3D one
  (:data:`VOXELS_PER_BATCH`), between 2 and :data:`MAX_BATCH_2D` slices. A
  network on a one-slice patch convolves in-plane only: it is a 2D network,
  and practical on a laptop CPU.

Example:
    >>> plan = Plan(classes=("liver",), label_ids=(5,), spacing=(3.0, 1.5, 1.5), patch=(32, 64, 64), ct=None)
    >>> Plan.from_dict(plan.to_dict()) == plan
    True
    >>> plan_2d = default_patch_2d([(30, 101, 122), (20, 91, 117)]), default_batch_2d((1, 96, 128))
    >>> plan_2d
    ((1, 96, 128), 32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..datasets import CaseSpec
from ..errors import InputError
from ..imaging import LoadedCase, Modality, detect_modality

#: Foreground voxels sampled per CT case for the intensity statistics (as nnU-Net).
FOREGROUND_SAMPLES = 10_000
#: Percentiles of the CT foreground the intensities are clipped to.
CT_PERCENTILES = (0.5, 99.5)
#: Default patch: the median resampled shape rounded up to this multiple, capped per axis.
PATCH_MULTIPLE = 16
MAX_PATCH = 128
#: The 2D configuration's in-plane patch cap, and its batch: about as many voxels as a default 3D batch.
MAX_PATCH_2D = 256
VOXELS_PER_BATCH = 2 * 32 * 96 * 128
MAX_BATCH_2D = 32
#: The default batch of the 3D configuration.
BATCH_3D = 2
CONFIGS = ("3d", "2d")


@dataclass(frozen=True)
class CTStatistics:
    """nnU-Net's CT normalisation: clip to [low, high], then (x - mean) / std."""

    low: float
    high: float
    mean: float
    std: float


@dataclass(frozen=True)
class Plan:
    """Preprocessing and output classes of one training run.

    Attributes:
        classes: class names, one network output channel each (no background).
        label_ids: the value each class gets in a predicted label map.
        spacing: target voxel spacing (slice, row, column) in mm.
        patch: training / sliding-window patch (slices, rows, columns).
        ct: foreground statistics of the CT training cases, None without CT.
        config: ``3d`` or ``2d`` (one-slice patches; spacing 0 keeps each case's slice spacing).
        batch: patches per training step.
    """

    classes: tuple[str, ...]
    label_ids: tuple[int, ...]
    spacing: tuple[float, float, float]
    patch: tuple[int, int, int]
    ct: CTStatistics | None
    config: str = "3d"
    batch: int = BATCH_3D

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "label_ids": list(self.label_ids),
            "spacing": list(self.spacing),
            "patch": list(self.patch),
            "ct": None if self.ct is None else self.ct.__dict__.copy(),
            "config": self.config,
            "batch": self.batch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        ct = data.get("ct")
        return cls(
            tuple(str(c) for c in data["classes"]),
            tuple(int(i) for i in data["label_ids"]),
            tuple(float(s) for s in data["spacing"]),  # type: ignore[arg-type]
            tuple(int(p) for p in data["patch"]),  # type: ignore[arg-type]
            None if ct is None else CTStatistics(**{k: float(v) for k, v in ct.items()}),
            str(data.get("config", "3d")),  # plans of runs made before the 2d configuration
            int(data.get("batch", BATCH_3D)),
        )

    def channel_lut(self, spec: CaseSpec, present_ids: Sequence[int]) -> dict[int, int]:
        """A case's label id -> network channel + 1 (0 for background and untrained classes)."""
        index = {name: channel + 1 for channel, name in enumerate(self.classes)}
        return {int(i): index.get(spec.name_of(int(i)), 0) for i in present_ids if int(i) != 0}


def case_modality(case: LoadedCase) -> Modality:
    return detect_modality(case.image)


def _class_set(specs: Sequence[CaseSpec], present: Sequence[np.ndarray], wanted: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Class names ordered by output id, and a distinct output id for each.

    A class keeps its id from the first case that holds it; when label files
    number classes differently and a later case's id is taken, that class gets
    the next id above all of them.
    """
    first_id: dict[str, int] = {}
    for spec, ids in zip(specs, present):
        for label_id in sorted(int(i) for i in ids if i != 0):
            first_id.setdefault(spec.name_of(label_id), label_id)
    if wanted:
        unknown = [name for name in wanted if name not in first_id]
        if unknown:
            raise InputError(specs[0].label or specs[0].image, f"classes {', '.join(unknown)} occur in no training label (known: {', '.join(sorted(first_id))})")
        names = [name for name in first_id if name in set(wanted)]
    else:
        names = list(first_id)
    if not names:
        raise InputError(specs[0].label or specs[0].image, "no training label holds any foreground class")
    assigned: dict[str, int] = {}
    next_free = max(first_id[name] for name in names) + 1
    for name in names:
        if first_id[name] in assigned.values():
            assigned[name], next_free = next_free, next_free + 1
        else:
            assigned[name] = first_id[name]
    ordered = sorted(names, key=assigned.__getitem__)
    return tuple(ordered), tuple(assigned[name] for name in ordered)


def _ct_statistics(foreground: list[np.ndarray]) -> CTStatistics | None:
    if not foreground:
        return None
    values = np.concatenate(foreground).astype(np.float64)
    low, high = np.percentile(values, CT_PERCENTILES)
    return CTStatistics(float(low), float(high), float(values.mean()), float(max(values.std(), 1e-8)))


def default_patch(shapes: Sequence[Sequence[float]]) -> tuple[int, int, int]:
    """Median shape rounded up to a multiple of 16, at most 128 per axis.

    Example:
        >>> default_patch([(30, 101, 122), (20, 91, 117)])
        (32, 96, 128)
    """
    median = np.median(np.asarray(shapes, dtype=np.float64), axis=0)
    return tuple(int(min(MAX_PATCH, PATCH_MULTIPLE * math.ceil(m / PATCH_MULTIPLE))) for m in median)  # type: ignore[return-value]


def default_patch_2d(shapes: Sequence[Sequence[float]]) -> tuple[int, int, int]:
    """One slice deep, the median slice rounded up to a multiple of 16, at most 256 per axis."""
    median = np.median(np.asarray(shapes, dtype=np.float64), axis=0)
    return (1, *(int(min(MAX_PATCH_2D, PATCH_MULTIPLE * math.ceil(m / PATCH_MULTIPLE))) for m in median[1:]))  # type: ignore[return-value]


def default_batch_2d(patch: Sequence[int]) -> int:
    """Slices per step: about the voxels of a default 3D batch, between 2 and 32."""
    return int(min(MAX_BATCH_2D, max(2, VOXELS_PER_BATCH // int(np.prod(patch)))))


def make_plan(
    specs: Sequence[CaseSpec],
    cases: Sequence[LoadedCase],
    classes: Sequence[str] | None = None,
    patch: Sequence[int] | None = None,
    seed: int = 0,
    config: str = "3d",
    batch: int | None = None,
    in_plane_spacing: Sequence[float] | None = None,
) -> Plan:
    """Fingerprint the training cases (already loaded with :func:`auvcore.imaging.load_case`).

    ``patch``, ``batch`` and ``in_plane_spacing`` (rows, columns in mm)
    override what the configuration picks from the data.
    """
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {CONFIGS}, got {config!r}")
    if config == "2d" and patch is not None and int(patch[0]) != 1:
        raise ValueError(f"a 2d patch is one slice deep (1, rows, columns), got {tuple(patch)}")
    rng = np.random.default_rng(seed)
    present = [np.unique(case.labels) for case in cases]
    names, ids = _class_set(specs, present, classes)
    spacings = np.asarray([case.spacing for case in cases])
    spacing = tuple(float(s) for s in np.median(spacings, axis=0))
    if in_plane_spacing is not None:
        if len(in_plane_spacing) != 2 or min(in_plane_spacing) <= 0:
            raise ValueError(f"in_plane_spacing takes two positive sizes in mm (rows, columns), got {tuple(in_plane_spacing)}")
        spacing = (spacing[0], *(float(s) for s in in_plane_spacing))
    if config == "2d":
        spacing = (0.0, *spacing[1:])  # each case keeps its own slice spacing
    foreground = []
    for case in cases:
        if case_modality(case) == "ct":
            voxels = case.image[case.labels > 0]
            if voxels.size:
                foreground.append(rng.choice(voxels, size=min(FOREGROUND_SAMPLES, voxels.size), replace=False))
    if patch is None:
        target = np.where(np.asarray(spacing) > 0, spacing, 1.0)
        shapes = [np.asarray(c.image.shape) * np.where(np.asarray(spacing) > 0, np.asarray(c.spacing) / target, 1.0) for c in cases]
        patch = default_patch_2d(shapes) if config == "2d" else default_patch(shapes)
    patch = tuple(int(p) for p in patch)
    if batch is None:
        batch = default_batch_2d(patch) if config == "2d" else BATCH_3D
    return Plan(names, ids, spacing, patch, _ct_statistics(foreground), config, int(batch))  # type: ignore[arg-type]
