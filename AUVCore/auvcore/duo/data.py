"""nnU-Net-style preprocessing and patch sampling with MONAI transforms.

Per case (deterministic, done once): read and check with
:func:`auvcore.imaging.load_case` (LPS, slices along axis 0), normalise
intensities (CT: clip to the training foreground's 0.5-99.5 percentiles, then
z-score with its mean and std; MR: z-score of the case), map label ids to
network channels by class name, and resample to the plan's spacing (MONAI
``Spacingd``: linear for the image, nearest for the label).

Each training case is then padded to the patch, once. Per training sample
(random, seeded by ``(seed, epoch, index)`` so that a resumed run draws exactly
the patches an uninterrupted one would): crop with foreground oversampling (MONAI ``RandCropByPosNegLabeld``,
one patch in three centred on foreground, as nnU-Net's 33%), then basic
augmentation: rotation and scaling, Gaussian noise, brightness, gamma and
mirroring. A one-slice patch (the 2d configuration) is rotated and scaled
in its plane only, and mirrored in-plane.

Example:
    >>> import torch
    >>> onehot = one_hot_channels(torch.tensor([[[[[0, 1], [2, 0]]]]]), num_classes=2)
    >>> onehot.shape, onehot[0, :, 0, 1, 0].tolist()
    (torch.Size([1, 2, 1, 2, 2]), [0.0, 1.0])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor, get_track_meta, set_track_meta
from monai.transforms import (
    Compose,
    FgBgToIndicesd,
    RandAdjustContrastd,
    RandAffined,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandGaussianNoised,
    RandScaleIntensityd,
    Spacingd,
    SpatialPadd,
)
from torch.utils.data import Dataset

from ..datasets import CaseSpec
from ..imaging import LoadedCase, load_case
from .plan import Plan, case_modality

#: Fraction of patches centred on foreground (pos : neg = 1 : 2).
FOREGROUND_POS, FOREGROUND_NEG = 1.0, 2.0


def normalise(case: LoadedCase, plan: Plan) -> np.ndarray:
    """CT: clip to the plan's foreground percentiles and z-score; MR (or CT without a CT plan): z-score."""
    image = case.image.astype(np.float32)
    if case_modality(case) == "ct" and plan.ct is not None:
        ct = plan.ct
        return ((np.clip(image, ct.low, ct.high) - ct.mean) / ct.std).astype(np.float32)
    return ((image - image.mean()) / max(float(image.std()), 1e-8)).astype(np.float32)


def as_metatensor(array: np.ndarray, spacing: Sequence[float]) -> MetaTensor:
    """(1, D, H, W) with an affine that carries the spacing (the orientation is already LPS)."""
    affine = torch.diag(torch.tensor([*map(float, spacing), 1.0], dtype=torch.float64))
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(array))[None], affine=affine)


def resample_to_plan(plan: Plan, keys: Sequence[str] = ("image", "label")) -> Spacingd:
    modes = tuple("bilinear" if key == "image" else "nearest" for key in keys)
    return Spacingd(keys=list(keys), pixdim=plan.spacing, mode=modes)


def prepare_case(case: LoadedCase, spec: CaseSpec, plan: Plan) -> dict[str, Any]:
    """A loaded case in the plan's space: image (1, D, H, W) float, label (1, D, H, W) channel index."""
    image = as_metatensor(normalise(case, plan), case.spacing)
    item: dict[str, Any] = {"image": image, "case_id": spec.case_id}
    keys: tuple[str, ...] = ("image",)
    if case.labels is not None:
        present = np.unique(case.labels)
        lut = np.zeros(int(present.max()) + 1, dtype=np.int64)
        for label_id, channel in plan.channel_lut(spec, present).items():
            lut[label_id] = channel
        item["label"] = as_metatensor(lut[case.labels].astype(np.float32), case.spacing)
        keys = ("image", "label")
    item = resample_to_plan(plan, keys)(item)
    if "label" in item:
        item["label"] = item["label"].round()
    return item


def load_training_cases(specs: Sequence[CaseSpec], plan: Plan, loaded: Sequence[LoadedCase] | None = None) -> list[dict[str, Any]]:
    """Prepared cases padded to the plan's patch, with the foreground / background voxel indices the crop
    samples from, as plain tensors (the patches need no affine).

    Padding comes before the indices: indices of the unpadded volume would point at other voxels of the
    padded one, and a case smaller than the patch would get its "foreground" patches elsewhere.
    """
    keys = ["image", "label"]
    pad = SpatialPadd(keys=keys, spatial_size=plan.patch)
    indices = FgBgToIndicesd(keys="label", fg_postfix="_fg", bg_postfix="_bg")
    cases = loaded if loaded is not None else [load_case(s.image, s.label) for s in specs]
    prepared = [indices(pad(prepare_case(case, spec, plan))) for case, spec in zip(cases, specs)]
    return [{**item, **{key: torch.as_tensor(item[key]).as_subclass(torch.Tensor) for key in keys}} for item in prepared]


def training_transform(patch: Sequence[int]) -> Compose:
    """Random part of the pipeline: foreground-oversampled crop and basic augmentation (of a case at least as
    large as the patch, :func:`load_training_cases`)."""
    keys = ["image", "label"]
    planar = int(patch[0]) == 1  # rotate about the slice axis and scale in-plane only
    rotate = (0.52, 0.0, 0.0) if planar else (0.52, 0.52, 0.52)
    scale = (0.0, 0.15, 0.15) if planar else (0.15, 0.15, 0.15)
    flips = (1, 2) if planar else (0, 1, 2)
    return Compose([
        RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=patch, pos=FOREGROUND_POS, neg=FOREGROUND_NEG,
                               num_samples=1, fg_indices_key="label_fg", bg_indices_key="label_bg", allow_smaller=True),
        RandAffined(keys=keys, prob=0.2, rotate_range=rotate, scale_range=scale, mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandGaussianNoised(keys="image", prob=0.1, std=0.1),
        RandScaleIntensityd(keys="image", factors=0.25, prob=0.15),
        RandAdjustContrastd(keys="image", prob=0.15, gamma=(0.7, 1.5)),
        *(RandFlipd(keys=keys, prob=0.5, spatial_axis=axis) for axis in flips),
    ])


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed that depends only on (seed, epoch, index)."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class PatchKey:
    """What a sampler yields: which epoch, and the sample's index in it (case = index mod n)."""

    epoch: int
    index: int


class PatchDataset(Dataset):
    """Random training patches from the cases of :func:`load_training_cases`; item ``PatchKey(e, i)`` is
    reproducible.

    Returns (image (1, *patch) float32, label (1, *patch) int64 channel index). The transforms run without
    MONAI's metadata tracking: on plain tensors a sample costs about half as much, and the patch needs no affine.
    """

    def __init__(self, cases: Sequence[dict[str, Any]], patch: Sequence[int], seed: int) -> None:
        if not cases:
            raise ValueError("no training cases")
        self.cases = list(cases)
        self.transform = training_transform(patch)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, key: PatchKey) -> tuple[torch.Tensor, torch.Tensor]:
        case = self.cases[key.index % len(self.cases)]
        self.transform.set_random_state(seed=sample_seed(self.seed, key.epoch, key.index))
        tracking = get_track_meta()
        set_track_meta(False)
        try:
            sample = self.transform(dict(case))
        finally:
            set_track_meta(tracking)
        sample = sample[0] if isinstance(sample, list) else sample
        image = torch.as_tensor(sample["image"]).float()
        label = torch.as_tensor(sample["label"]).round().long()
        return image, label


def one_hot_channels(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Channel-index labels (B, 1, D, H, W) -> one-hot (B, C, D, H, W) float, background dropped."""
    onehot = F.one_hot(label[:, 0].long().clamp_min(0), num_classes + 1)
    return onehot[..., 1:].permute(0, 4, 1, 2, 3).float()
