"""The losses of the AUV nnU-Net trainers, on nnU-Net's outputs and targets.

nnU-Net's network gives ``1 + K`` logits (background first) per output and its data
loader a label map (B, 1, ...) per output. Two losses use them:

* :class:`ForegroundDUOLoss`, DUO exactly as ``auv train`` computes it
  (:class:`auvcore.duo.loss.SegmentationLoss`: per-class sigmoid Dice + BCE, S weights
  from the network's own logits, the label purified by the noise head) on the K
  foreground logits. The trainer holds the background logit at 0 (its output weights
  are zero and receive no gradient), so nnU-Net's softmax-argmax at inference gives each
  voxel the class of largest logit among those above 0: the sigmoid decision of
  ``auv predict`` (the most probable class above 0.5), with stock ``nnUNetv2_predict``.
* :class:`WeightedDiceCELoss`, nnU-Net's own Dice + CE (its memory-efficient soft Dice
  without background, batch Dice as planned, cross-entropy) with a weight per class; with
  every weight 1 it is nnU-Net's ``DC_and_CE_loss``.

Both take the outputs of one deep-supervision level; the trainers wrap them in
nnU-Net's ``DeepSupervisionWrapper`` with nnU-Net's weights.

Example:
    >>> import torch
    >>> logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8)).float()
    >>> loss = ForegroundDUOLoss(num_classes=2, form="weights")
    >>> bool(torch.isfinite(loss(logits, target)))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..duo.config import DuoForm
from ..duo.loss import SegmentationLoss


def foreground_one_hot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """nnU-Net's label map (B, 1, ...) as one channel per foreground class (B, K, ...), float.

    Example:
        >>> foreground_one_hot(torch.tensor([[[0, 2, 1]]]), 2)[0].int().tolist()
        [[0, 0, 1], [0, 1, 0]]
    """
    labels = target[:, 0].long()
    return torch.stack([labels == k for k in range(1, num_classes + 1)], dim=1).float()


def as_volume(tensor: torch.Tensor) -> torch.Tensor:
    """A 2d configuration's (B, C, H, W) as one-slice volumes (B, C, 1, H, W), the layout DUO's loss reads."""
    return tensor[:, :, None] if tensor.ndim == 4 else tensor


class ForegroundDUOLoss(nn.Module):
    """DUO's loss (``auv train``'s form and defaults) on one nnU-Net output's foreground logits.

    ``purifying`` is False in DUO's warm-up (the trainer sets it each epoch); ``noise_peak`` and
    ``scale`` keep the largest |n(x)| and the last eps_hat seen, for the trainer's log.
    """

    def __init__(self, num_classes: int, form: DuoForm) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.segmentation = SegmentationLoss(duo=True, form=form)
        self.purifying = True
        self.noise_peak = 0.0
        self.scale: float | None = None

    def forward(self, output: torch.Tensor, target: torch.Tensor, noise: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            self.noise_peak = max(self.noise_peak, float(noise.detach().abs().max()))
            self.scale = float(scale.detach()) if scale is not None else None
        parts = self.segmentation(as_volume(output[:, 1:]), as_volume(foreground_one_hot(target, self.num_classes)),
                                  None if noise is None else as_volume(noise), scale, purifying=self.purifying)
        return parts.total


class WeightedDiceCELoss(nn.Module):
    """nnU-Net's Dice + CE with a weight per foreground class (``weights``, set before each batch; None: all 1).

    The Dice is nnU-Net's ``MemoryEfficientSoftDiceLoss`` taken one class at a time (so DDP's batch Dice
    gathers as nnU-Net's does), combined as ``sum_c w_c Dice_c / K``; the cross-entropy weighs each
    voxel by its class's weight (background 1).
    """

    def __init__(self, num_classes: int, batch_dice: bool, ddp: bool = False, smooth: float = 1e-5) -> None:
        super().__init__()
        from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

        self.num_classes = num_classes
        self.dice = MemoryEfficientSoftDiceLoss(apply_nonlin=None, batch_dice=batch_dice, do_bg=True, smooth=smooth, ddp=ddp)
        self.weights: torch.Tensor | None = None

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = self.weights if self.weights is not None else output.new_ones(self.num_classes)
        weights = weights.to(device=output.device, dtype=torch.float32)
        probabilities = torch.softmax(output.float(), dim=1)
        one_hot = foreground_one_hot(target, self.num_classes)
        dice = torch.stack([self.dice(probabilities[:, c + 1 : c + 2], one_hot[:, c : c + 1]) for c in range(self.num_classes)])
        cross_entropy = F.cross_entropy(output.float(), target[:, 0].long(), weight=torch.cat([weights.new_ones(1), weights]))
        return (weights * dice).mean() + cross_entropy
