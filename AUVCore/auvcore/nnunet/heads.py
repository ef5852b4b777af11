"""DUO's noise heads on nnU-Net's own network, without changing the network.

nnU-Net's U-Net (``dynamic_network_architectures``) ends every decoder stage in a
1x1 convolution, ``decoder.seg_layers[s]``, and with deep supervision each one gives
an output (returned full resolution first). :class:`FeatureTap` keeps the input of each
of those convolutions (a forward pre-hook, as :class:`auvcore.duo.model.DUONet` does
for one layer), and :class:`NoiseHeads` runs one :class:`~auvcore.duo.noise_head.NoiseHead`
per output on them, so DUO purifies each deep-supervision output's label with a noise
pattern at that output's resolution. The heads are a module apart from the network: the
network's state dict, which nnU-Net saves as ``network_weights`` and ``nnUNetv2_predict``
loads, is nnU-Net's own.

The heads are 3D convolutions; the 2d configuration's features (B, C, H, W) pass
through them as one-slice volumes (B, C, 1, H, W), as the bundled trainer's 2d
configuration does.

Example (a two-stage stand-in for nnU-Net's decoder):
    >>> import torch
    >>> from torch import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.decoder = nn.Module()
    ...         self.decoder.seg_layers = nn.ModuleList([nn.Conv2d(16, 3, 1), nn.Conv2d(8, 3, 1)])
    ...     def forward(self, x):
    ...         low = self.decoder.seg_layers[0](torch.randn(x.shape[0], 16, 3, 3))
    ...         return [self.decoder.seg_layers[1](torch.randn(x.shape[0], 8, 6, 6)), low]
    >>> network = Net()
    >>> tap = FeatureTap(network)
    >>> outputs = network(torch.zeros(2, 1, 6, 6))
    >>> features = tap.take(len(outputs))
    >>> [f.shape[1] for f in features]           # full resolution (the last layer) first, as nnU-Net's outputs
    [8, 16]
    >>> noises, scales = NoiseHeads(tap.feature_channels(), num_classes=3)(features)
    >>> noises[0].shape, bool(noises[0].abs().max() < 3)
    (torch.Size([2, 3, 6, 6]), True)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..duo.noise_head import NoiseHead


def seg_layers(network: nn.Module) -> nn.ModuleList:
    """The output convolutions of nnU-Net's U-Net decoder (lowest resolution first).

    Raises:
        TypeError: for a network without ``decoder.seg_layers`` (an architecture DUO cannot tap).
    """
    layers = getattr(getattr(network, "decoder", None), "seg_layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        raise TypeError(f"{type(network).__name__} has no decoder.seg_layers: DUO's noise heads need nnU-Net's U-Net "
                        "decoder (PlainConvUNet, ResidualEncoderUNet)")
    return layers


class FeatureTap:
    """Keeps the features that enter each of the decoder's output convolutions in the latest forward pass."""

    def __init__(self, network: nn.Module) -> None:
        self.layers = seg_layers(network)
        self._features: dict[int, torch.Tensor] = {}
        network.register_forward_pre_hook(lambda _module, _inputs: self._features.clear())
        for index, layer in enumerate(self.layers):
            layer.register_forward_pre_hook(self._keeper(index))

    def _keeper(self, index: int):
        def keep(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            self._features[index] = inputs[0]
        return keep

    def feature_channels(self) -> list[int]:
        """Channels of each output's features, full resolution first (the order of nnU-Net's outputs)."""
        return [int(layer.in_channels) for layer in reversed(self.layers)]

    def take(self, outputs: int) -> list[torch.Tensor]:
        """The features of the latest forward pass's ``outputs`` outputs, full resolution first; then forgets them.

        Raises:
            RuntimeError: when the latest forward pass did not run those output layers.
        """
        last = len(self.layers) - 1
        wanted = [last - j for j in range(outputs)]
        missing = [i for i in wanted if i not in self._features]
        if missing:
            raise RuntimeError(f"the network's forward pass did not run the output layer(s) {missing}")
        features = [self._features[i] for i in wanted]
        self._features.clear()
        return features


class NoiseHeads(nn.Module):
    """One DUO noise head per output (full resolution first), each with its own learned scale eps_hat."""

    def __init__(self, feature_channels: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(NoiseHead(int(channels), num_classes) for channels in feature_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """n(x) per output, shaped as the features' spatial size with one channel per class, and eps_hat per output."""
        noises, scales = [], []
        for head, feature in zip(self.heads, features):
            planar = feature.ndim == 4
            noise = head(feature[:, :, None] if planar else feature)
            noises.append(noise[:, :, 0] if planar else noise)
            scales.append(head.scale())
        return noises, scales
