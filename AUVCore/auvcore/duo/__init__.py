"""DUO: Dynamic Uncertainty-aware Optimization, and the bundled nnU-Net-style trainer (SPEC §6).

The pieces, each usable on its own:

* :mod:`~auvcore.duo.weights` — class weights from S of the network's own logits;
* :mod:`~auvcore.duo.noise_head` — the parallel noise head and label purification;
* :mod:`~auvcore.duo.loss` — the per-class weighted Dice + BCE;
* :mod:`~auvcore.duo.model` — :class:`DUONet`, which makes any C-channel network DUO-capable;
* :mod:`~auvcore.duo.backbones` — MONAI DynUNet / SwinUNETR;
* :mod:`~auvcore.duo.plan`, :mod:`~auvcore.duo.data` — fingerprint, preprocessing, patches;
* :mod:`~auvcore.duo.trainer` — ``auv train``; :mod:`~auvcore.duo.predict` — ``auv predict``.

Plug-and-play on your own network and training loop:
    >>> import torch
    >>> from torch import nn
    >>> from auvcore.duo import DUONet, SegmentationLoss
    >>> model = DUONet(nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 2, 1)), num_classes=2)
    >>> out = model(torch.randn(2, 1, 4, 8, 8))
    >>> labels = (torch.rand(2, 2, 4, 8, 8) > 0.5).float()
    >>> loss = SegmentationLoss(duo=True)(out.logits, labels, out.noise, out.scale).total
    >>> loss.backward()
"""

from .loss import LossParts, SegmentationLoss
from .model import DUONet, DUOOutput
from .noise_head import NoiseHead, noise_regulariser, purify
from .weights import class_weights

__all__ = ["DUONet", "DUOOutput", "LossParts", "NoiseHead", "SegmentationLoss", "class_weights", "noise_regulariser", "purify"]
