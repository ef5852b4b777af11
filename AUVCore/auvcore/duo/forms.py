"""The forms of DUO's label purification: the paper's literal one, and variants that do not collapse.

The paper's form (SPEC §6) trains against ``y_tilde = clip(y - eps_hat * n(x), 0, 1)``
with both Dice and BCE. On the CPU ablation it collapses: a mean-0 noise lifts
about half the background voxels to ``eps_hat |n|``, and under batch Dice that
soft background mass outweighs a small organ (docs/changelog.md, the DUO ablation).
The variants each address one part of that failure:

* ``paper``: Dice and BCE against ``y_tilde``;
* ``hard_dice``: Dice against the hard label ``y``, BCE against ``y_tilde``;
* ``disagree``: purify only where the (detached) prediction and the label disagree;
* ``detached``: the noise head learns the detached residual ``y - p`` (squared
  error), and the segmentation loss sees ``y_tilde`` without gradient into the
  head, so the head cannot make the target easy. Only a share of the learnt
  correction is applied (:data:`DETACHED_SHARE`): a head that fits the residual
  makes ``y - (y - p) = p``, a target that is the network's own prediction and
  teaches nothing; with the share it is ``0.8 y + 0.2 p`` where the head is exact,
  the bootstrapping target of Reed et al. (2015);
* ``boundary``: purify only in a one-voxel band around the label's boundary,
  where annotation noise lives;
* ``weights``: the S-based class weights alone, no noise head.

Every noise form can start with a warm-up (``TrainConfig.duo_warmup``): until
the network has fitted the patterns most labels share, it trains on the labels
as given (a network learns the clean patterns before it memorises the noise), so
the noise head purifies against a prediction that means something. Without it,
``detached`` purifies toward an untrained network's output from the first step.

Example:
    >>> import torch
    >>> y = torch.zeros(1, 1, 1, 5, 5); y[..., 1:4, 1:4] = 1
    >>> boundary_band(y)[0, 0, 0].int().tolist()[2]
    [1, 1, 0, 1, 1]
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .config import DUO_FORMS, NOISE_FORMS, DuoForm
from .noise_head import purify

#: Share of ``detached``'s learnt correction applied to the label (1 - beta of bootstrapping's ``beta y + (1 - beta) p``).
DETACHED_SHARE = 0.2


class Targets(NamedTuple):
    """What the segmentation loss trains against, and the noise head's own loss (0 where it has none)."""

    dice: torch.Tensor
    bce: torch.Tensor
    noise_loss: torch.Tensor


def boundary_band(labels: torch.Tensor) -> torch.Tensor:
    """Voxels within one voxel of a class's boundary, in-plane (B, C, D, H, W) float: dilation minus erosion."""
    planar = labels.float().flatten(0, 2)[:, None] if labels.ndim == 5 else labels.float()
    dilated = F.max_pool2d(planar, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-planar, 3, stride=1, padding=1)
    band = (dilated - eroded).clamp(0, 1)
    return band.reshape(labels.shape) if labels.ndim == 5 else band


def _residual_loss(labels: torch.Tensor, logits: torch.Tensor, noise: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``detached``'s head loss: its correction against the detached residual ``y - p``, squared."""
    residual = labels - torch.sigmoid(logits.detach())
    return (scale * noise.float() - residual).square().mean()


def duo_targets(form: DuoForm, labels: torch.Tensor, logits: torch.Tensor, noise: torch.Tensor | None,
                scale: torch.Tensor | None, purifying: bool = True) -> Targets:
    """The Dice and BCE targets of one DUO form (``labels`` one-hot, ``logits`` the network's).

    With ``purifying`` False (the warm-up) every form trains on the labels as given; ``detached``'s head
    still learns the residual, which does not reach the segmentation loss.
    """
    zero = logits.new_zeros(())
    if form == "weights":
        return Targets(labels, labels, zero)
    if form not in NOISE_FORMS:
        raise ValueError(f"unknown DUO form {form!r}; choose one of {', '.join(DUO_FORMS)}")
    if noise is None or scale is None:
        raise ValueError(f"the DUO form {form!r} needs the noise head's output and scale")
    if not purifying:
        return Targets(labels, labels, _residual_loss(labels, logits, noise, scale) if form == "detached" else zero)
    if form == "paper":
        purified = purify(labels, noise, scale)
        return Targets(purified, purified, zero)
    if form == "hard_dice":
        return Targets(labels, purify(labels, noise, scale), zero)
    if form == "disagree":
        wrong = ((torch.sigmoid(logits.detach()) > 0.5).float() != labels).float()
        purified = purify(labels, noise * wrong, scale)
        return Targets(purified, purified, zero)
    if form == "detached":
        purified = (labels - DETACHED_SHARE * (scale * noise.float()).detach()).clamp(0.0, 1.0)
        return Targets(purified, purified, _residual_loss(labels, logits, noise, scale))
    band = boundary_band(labels)
    purified = purify(labels, noise * band, scale)
    return Targets(purified, purified, zero)
