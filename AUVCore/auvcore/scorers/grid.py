"""Labels brought onto a backend's feature grids.

A backend's mask logits and embeddings each cover the whole slice on a grid
of their own (e.g. LiteMedSAM: logits on the slice resized to 256 on its
longest side, embeddings on a quarter of that). Label-aware scorers compare
them with the annotation, so the label slice is resampled onto those grids:
by nearest neighbour for the logits (a class id per pixel), and as the
fraction of each embedding cell the class covers (its occupancy).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def labels_on_grid(label_slice: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The class id of every pixel of ``grid`` (nearest neighbour), as int64.

    Example:
        >>> labels_on_grid(np.array([[0, 1], [2, 2]]), (4, 4))[::2, ::2].tolist()
        [[0, 1], [2, 2]]
    """
    plane = torch.from_numpy(np.ascontiguousarray(label_slice, dtype=np.float32))[None, None]
    return F.interpolate(plane, size=grid, mode="nearest-exact")[0, 0].to(torch.int64).numpy()


def occupancy_on_grid(label_slice: np.ndarray, class_ids: Sequence[int], grid: tuple[int, int]) -> np.ndarray:
    """(C, h, w): the fraction of each cell of ``grid`` that each class covers.

    Example:
        >>> occupancy_on_grid(np.array([[1, 1], [0, 1]]), [1], (1, 1)).round(2).tolist()
        [[[0.75]]]
    """
    one_hot = torch.from_numpy(np.stack([label_slice == c for c in class_ids]).astype(np.float32))[None]
    if grid[0] <= label_slice.shape[0] and grid[1] <= label_slice.shape[1]:
        return F.interpolate(one_hot, size=grid, mode="area")[0].numpy()
    return F.interpolate(one_hot, size=grid, mode="bilinear", align_corners=False)[0].numpy()


def logits_on_label_grid(logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """(N, h, w) mask logits on the backend's grid -> (N, H, W) float32 on the slice's own voxel grid (bilinear).

    The grid covers the whole slice with pixel centres where the backend's resize put them (half-pixel aligned),
    so the interpolation is the inverse of that resize.

    Example:
        >>> logits_on_label_grid(torch.tensor([[[-1.0, 1.0]]]), (1, 4)).round(2).tolist()
        [[[-1.0, -0.5, 0.5, 1.0]]]
    """
    if logits.shape[0] == 0:
        return np.zeros((0, *shape), dtype=np.float32)
    return F.interpolate(logits[:, None].float(), size=shape, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()
