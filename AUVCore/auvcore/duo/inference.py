"""Sliding-window inference and per-class Dice, shared by validation and ``auv predict``.

Example:
    >>> import torch
    >>> pred = torch.zeros(1, 2, 2, 4, 4); pred[:, 0, :, :2] = 1
    >>> ref = pred.clone(); ref[:, 1, 0, 0, 0] = 1
    >>> [round(d, 3) if d == d else None for d in class_dice(pred, ref)]
    [1.0, 0.0]
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.metrics import compute_dice
from torch import nn

#: Overlap of neighbouring windows (nnU-Net uses 0.5).
OVERLAP = 0.5


@torch.no_grad()
def predict_probabilities(model: nn.Module, image: torch.Tensor, patch: Sequence[int], overlap: float = OVERLAP, amp: bool = False) -> torch.Tensor:
    """Sigmoid class probabilities (B, C, D, H, W) of an image (B, 1, D, H, W), Gaussian-weighted windows."""
    model_was_training = model.training
    model.eval()
    try:
        with torch.autocast(device_type=image.device.type, dtype=torch.float16, enabled=amp):
            logits = sliding_window_inference(
                image, roi_size=list(patch), sw_batch_size=2, predictor=lambda x: model(x).logits,
                overlap=overlap, mode="gaussian", padding_mode="constant",
            )
    finally:
        model.train(model_was_training)
    if isinstance(logits, MetaTensor):
        logits = logits.as_tensor()
    return torch.sigmoid(logits.float())


def class_dice(prediction: torch.Tensor, reference: torch.Tensor) -> list[float]:
    """Dice per class of binary (1, C, ...) masks; NaN where the reference lacks the class."""
    dice = compute_dice(prediction.float(), reference.float(), include_background=True, ignore_empty=True)
    return [float(d) for d in dice[0]]


def decode_labels(probabilities: torch.Tensor, label_ids: Sequence[int], threshold: float = 0.5) -> torch.Tensor:
    """Label map (B, D, H, W): the most probable class where its probability passes ``threshold``, else 0.

    Example:
        >>> p = torch.tensor([[[[[0.9, 0.2]]], [[[0.6, 0.1]]]]])   # (1, 2, 1, 1, 2)
        >>> decode_labels(p, [5, 7]).tolist()
        [[[[5, 0]]]]
    """
    best, channel = probabilities.max(dim=1)
    ids = torch.as_tensor(list(label_ids), device=probabilities.device)
    return torch.where(best >= threshold, ids[channel], torch.zeros_like(channel))
