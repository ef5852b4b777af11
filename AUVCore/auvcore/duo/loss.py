"""The DUO segmentation loss: per-class weighted Dice + BCE against the purified label.

    L = mean_c w_c * (Dice_c + BCE_c)(logits, y_tilde) + lambda * R(n(x))

(the paper's form; :mod:`auvcore.duo.forms` has the variants, e.g. Dice on the
hard label, and adds a form's own noise-head loss to ``L``)

Sigmoid outputs, one channel per class (no background channel). ``w_c`` are the
S-based class weights (:mod:`auvcore.duo.weights`), ``y_tilde`` the label
purified by the noise head and ``R`` its mean-0 / variance-1 regulariser
(:mod:`auvcore.duo.noise_head`). SPEC §6 writes the sum over classes; the mean
used here is that sum divided by C, so the learning rate does not depend on
the number of classes. With DUO off, w = 1, y_tilde = y and there is no
regulariser: the loss is plain Dice + BCE, exactly MONAI's ``DiceLoss(sigmoid=True,
batch=True)`` plus ``BCEWithLogitsLoss()``.

Dice is nnU-Net's batch Dice: each class's overlap is summed over the whole
batch, so a class missing from one patch does not dominate.

Example:
    >>> import torch
    >>> logits = torch.randn(2, 3, 4, 8, 8)
    >>> labels = (torch.rand(2, 3, 4, 8, 8) > 0.7).float()
    >>> parts = SegmentationLoss(duo=False)(logits, labels)
    >>> parts.weights.tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn

from .config import DuoForm
from .forms import duo_targets
from .noise_head import noise_regulariser
from .weights import DEFAULT_TEMPERATURE, class_weights

#: Weight of the noise regulariser in the total loss.
DEFAULT_REGULARISER_WEIGHT = 0.1


@dataclass(frozen=True)
class LossParts:
    """One evaluation of the loss; ``total`` is what is back-propagated."""

    total: torch.Tensor
    segmentation: torch.Tensor
    regulariser: torch.Tensor
    weights: torch.Tensor
    dice: torch.Tensor
    bce: torch.Tensor


class SegmentationLoss(nn.Module):
    """Dice + BCE per class; with ``duo=True`` S-weighted, on purified labels, plus the regulariser."""

    def __init__(
        self,
        duo: bool = True,
        regulariser_weight: float = DEFAULT_REGULARISER_WEIGHT,
        temperature: float = DEFAULT_TEMPERATURE,
        form: DuoForm = "paper",
    ) -> None:
        super().__init__()
        self.duo = duo
        self.form = form
        self.regulariser_weight = regulariser_weight
        self.temperature = temperature
        self.dice = DiceLoss(sigmoid=True, batch=True, reduction="none", soft_label=True)

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        noise: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
        purifying: bool = True,
    ) -> LossParts:
        """Args:
            logits: (B, C, D, H, W) class-wise logits.
            labels: (B, C, D, H, W) one-hot labels in {0, 1} (one channel per class).
            noise, scale: the noise head's n(x) and eps_hat; required when ``duo``.
            purifying: False in DUO's warm-up, when the noise head does not yet touch the label.
        """
        if logits.shape != labels.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
        logits = logits.float()
        labels = labels.float()
        regulariser = logits.new_zeros(())
        if self.duo:
            weights = class_weights(logits, labels, self.temperature)
            targets = duo_targets(self.form, labels, logits, noise, scale, purifying)
            if noise is not None and self.form != "weights":
                regulariser = noise_regulariser(noise)
            dice_target, bce_target, noise_loss = targets
        else:
            weights = torch.ones(logits.shape[1], device=logits.device)
            dice_target = bce_target = labels
            noise_loss = regulariser
        dice = self.dice(logits, dice_target).reshape(-1)
        bce = F.binary_cross_entropy_with_logits(logits, bce_target, reduction="none").mean(dim=(0, 2, 3, 4))
        segmentation = (weights * (dice + bce)).mean()
        total = segmentation + self.regulariser_weight * regulariser + noise_loss
        return LossParts(total, segmentation, regulariser, weights, dice.detach(), bce.detach())
