"""MONAI backbones for the trainer, built from a JSON-able config so a checkpoint can rebuild them.

``dynunet`` is nnU-Net's U-Net (MONAI DynUNet) with kernels and strides planned
from the patch size and voxel spacing the way nnU-Net plans them; ``swinunetr``
is MONAI's SwinUNETR (the patch must be at least 64 and divisible by 32
on every axis; it needs the ``einops`` package).

Example:
    >>> config = backbone_config("dynunet", num_classes=3, patch=(32, 32, 32), spacing=(4.0, 1.5, 1.5), base_filters=8)
    >>> config["strides"]
    [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 1, 1]]
    >>> net = build_backbone(config)
    >>> type(net).__name__
    'DynUNet'
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from monai.networks.nets import DynUNet, SwinUNETR
from torch import nn

BACKBONES = ("dynunet", "swinunetr")
#: nnU-Net stops downsampling an axis below this many voxels.
MIN_FEATURE_SIZE = 4
#: nnU-Net's cap on the number of filters per stage.
MAX_FILTERS = 320


def plan_dynunet(patch: Sequence[int], spacing: Sequence[float]) -> tuple[list[list[int]], list[list[int]]]:
    """nnU-Net-style (kernels, strides): halve an axis while it is at most twice the finest
    spacing and stays at least ``MIN_FEATURE_SIZE`` voxels; 3-wide kernels on such axes.

    An axis one voxel wide (the 2d configuration's slice axis) is neither convolved across
    nor downsampled, whatever its spacing: the network is then a 2D one.

    Example:
        >>> plan_dynunet((1, 64, 64), (0.0, 1.5, 1.5))
        ([[1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]], [[1, 1, 1], [1, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]])
    """
    sizes = [int(s) for s in patch]
    spacings = [float(s) if size > 1 else math.inf for s, size in zip(spacing, sizes)]
    kernels: list[list[int]] = []
    strides: list[list[int]] = [[1] * len(sizes)]
    while True:
        finest = min(spacings)
        isotropic_enough = [size > 1 and s / finest <= 2 for s, size in zip(spacings, sizes)]
        stride = [2 if ok and size % 2 == 0 and size // 2 >= MIN_FEATURE_SIZE else 1 for ok, size in zip(isotropic_enough, sizes)]
        kernels.append([3 if ok else 1 for ok in isotropic_enough])
        if all(s == 1 for s in stride) or len(strides) == 6:
            break
        strides.append(stride)
        sizes = [size // s for size, s in zip(sizes, stride)]
        spacings = [sp * s for sp, s in zip(spacings, stride)]
    kernels = kernels[: len(strides)]
    return kernels, strides


def backbone_config(
    name: str,
    num_classes: int,
    patch: Sequence[int],
    spacing: Sequence[float],
    base_filters: int = 32,
    in_channels: int = 1,
) -> dict[str, Any]:
    """A JSON-able description of the backbone, for :func:`build_backbone` and checkpoints."""
    if name == "dynunet":
        kernels, strides = plan_dynunet(patch, spacing)
        filters = [min(base_filters * 2**level, MAX_FILTERS) for level in range(len(strides))]
        return {"name": name, "in_channels": in_channels, "out_channels": num_classes, "kernel_size": kernels, "strides": strides, "filters": filters}
    if name == "swinunetr":
        if int(patch[0]) == 1:
            raise ValueError("the 2d configuration trains dynunet only (DUO's noise head is built for 3D feature maps); "
                             "use --backbone dynunet, or --config 3d for swinunetr")
        if any(int(p) % 32 or int(p) < 64 for p in patch):
            raise ValueError(f"SwinUNETR needs a patch of at least 64 and divisible by 32 on every axis, got {tuple(patch)}")
        feature_size = max(12, 12 * round(base_filters / 12))
        return {"name": name, "in_channels": in_channels, "out_channels": num_classes, "feature_size": feature_size}
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def build_backbone(config: dict[str, Any]) -> nn.Module:
    """The network described by :func:`backbone_config`."""
    name = config["name"]
    if name == "dynunet":
        return DynUNet(
            spatial_dims=3,
            in_channels=config["in_channels"],
            out_channels=config["out_channels"],
            kernel_size=config["kernel_size"],
            strides=config["strides"],
            upsample_kernel_size=config["strides"][1:],
            filters=config["filters"],
            norm_name=("INSTANCE", {"affine": True}),
            res_block=False,
        )
    if name == "swinunetr":
        return SwinUNETR(in_channels=config["in_channels"], out_channels=config["out_channels"], feature_size=config["feature_size"], spatial_dims=3)
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
