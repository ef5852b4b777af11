"""Make any segmentation network DUO-capable: logits plus the noise head on its features.

:class:`DUONet` wraps an ``nn.Module`` that maps an image (B, in, D, H, W) to
C-channel logits (B, C, D, H, W). A forward pre-hook keeps the input of the
layer that produces the logits (by default the last convolution with C output
channels), and the :class:`~auvcore.duo.noise_head.NoiseHead` runs on that
feature map, in parallel with the network's own output layer.

Wrapping your own network:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 2, 1))
    >>> duo = DUONet(net, num_classes=2)            # finds the last Conv3d with 2 outputs
    >>> out = duo(torch.randn(1, 1, 4, 8, 8))
    >>> out.logits.shape, out.noise.shape
    (torch.Size([1, 2, 4, 8, 8]), torch.Size([1, 2, 4, 8, 8]))

Name the feature layer (``feature_layer="decoder.head"``) when the logits come
from something other than a convolution, and give ``feature_channels`` when
that layer has no ``in_channels``. ``noise=False`` gives the same interface
without a noise head (plain training).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .noise_head import NoiseHead

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class DUOOutput(NamedTuple):
    """logits (B, C, ...); noise n(x) (B, C, ...) or None; scale eps_hat or None."""

    logits: torch.Tensor
    noise: torch.Tensor | None
    scale: torch.Tensor | None


def find_logit_layer(backbone: nn.Module, num_classes: int) -> str:
    """Name of the last convolution in ``backbone`` with ``num_classes`` output channels."""
    found = [name for name, module in backbone.named_modules() if isinstance(module, _CONVOLUTIONS) and module.out_channels == num_classes]
    if not found:
        raise ValueError(f"no convolution with {num_classes} output channels in {type(backbone).__name__}; pass feature_layer")
    return found[-1]


class DUONet(nn.Module):
    """A backbone returning C-channel logits, plus DUO's parallel noise head."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        noise: bool = True,
        feature_layer: str | None = None,
        feature_channels: int | None = None,
        hidden_channels: int = 16,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.noise_head: NoiseHead | None = None
        self._features: torch.Tensor | None = None
        if not noise:
            return
        name = feature_layer or find_logit_layer(backbone, num_classes)
        layer = backbone.get_submodule(name)
        channels = feature_channels or getattr(layer, "in_channels", None)
        if channels is None:
            raise ValueError(f"layer {name!r} has no in_channels; pass feature_channels")
        self.noise_head = NoiseHead(int(channels), num_classes, hidden_channels)
        layer.register_forward_pre_hook(self._keep_features)

    def _keep_features(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._features = inputs[0]

    def forward(self, image: torch.Tensor) -> DUOOutput:
        logits = self.backbone(image)
        if self.noise_head is None:
            return DUOOutput(logits, None, None)
        features, self._features = self._features, None
        if features is None:
            raise RuntimeError("the feature layer did not run; check feature_layer")
        return DUOOutput(logits, self.noise_head(features), self.noise_head.scale())
