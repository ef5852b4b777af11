"""DUO class weights from the semantic perception scale of the network's own logits.

For a batch of class-wise logits ``(B, C, D, H, W)`` (slices along axis 2, as
everywhere in auvcore), each class's rows are the ``B * D`` slices of the batch
and its columns the ``H * W`` voxels of a slice: ``z`` has shape
``(C, B*D, H*W)``, the layout of SPEC §3 with the batch's slices stacked. As in
the ``classwise`` scoring mode, a class keeps only the slices where its
(noisy) label is present, so S measures the network's features where the class
is annotated.

A class with a larger S (rich, high-rank features: easy) gets a smaller weight,
``w_c ∝ exp(-S_c / temperature)``, normalised so that the weights of the
classes with a defined S have mean 1. A class whose S is undefined (fewer than
two slices hold it, or zero energy) gets weight 1, so the mean of all weights
stays 1. The weights carry no gradient.

Example:
    >>> import torch
    >>> logits = torch.randn(2, 3, 4, 8, 8)
    >>> w = class_weights(logits)
    >>> w.shape, round(float(w.mean()), 6)
    (torch.Size([3]), 1.0)
"""

from __future__ import annotations

import torch

from ..spectrum import semantic_scale

#: Default softness of the S -> weight map; S lies in [0, 1], so weights span at most e^1.
DEFAULT_TEMPERATURE = 1.0


def batch_rows(logits: torch.Tensor) -> torch.Tensor:
    """Class-wise logits (B, C, D, H, W) as the (C, B*D, H*W) matrices that S is taken of."""
    if logits.ndim != 5:
        raise ValueError(f"logits must have shape (B, C, D, H, W), got {tuple(logits.shape)}")
    batch, classes, depth, height, width = logits.shape
    return logits.permute(1, 0, 2, 3, 4).reshape(classes, batch * depth, height * width)


def present_rows(labels: torch.Tensor) -> torch.Tensor:
    """Bool (C, B*D): the slices where each class of a one-hot/soft label (B, C, D, H, W) is present."""
    return (labels > 0.5).any(dim=(3, 4)).permute(1, 0, 2).reshape(labels.shape[1], -1)


def weights_from_scales(scales: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """Map S per class (NaN where undefined) to weights: larger S -> smaller, mean 1.

    Example:
        >>> w = weights_from_scales(torch.tensor([0.2, 0.8, float("nan")]))
        >>> bool(w[0] > w[1]), float(w[2]), round(float(w.mean()), 6)
        (True, 1.0, 1.0)
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scales = scales.double()
    defined = ~torch.isnan(scales)
    weights = torch.ones_like(scales)
    if defined.any():
        raw = torch.exp(-scales[defined] / temperature)
        weights[defined] = raw / raw.mean()
    return weights.float()


@torch.no_grad()
def class_weights(
    logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """DUO weight per class (C,) on ``logits``' device, from S of the batch's logits.

    Args:
        logits: the network's class-wise logits (B, C, D, H, W).
        labels: optional one-hot or soft labels of the same shape; a class keeps
            only the slices where its label is present. Default: all slices.
        temperature: softness of the map ``exp(-S / temperature)``.
    """
    z = batch_rows(logits.detach().float())
    if not torch.isfinite(z).all():  # an overflowing mixed-precision step: no evidence, no reweighting
        return torch.ones(z.shape[0], device=logits.device)
    present = None if labels is None else present_rows(labels)
    scales = semantic_scale(z, present)
    return weights_from_scales(scales, temperature).to(logits.device)
