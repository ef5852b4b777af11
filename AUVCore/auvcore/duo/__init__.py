"""DUO: Dynamic Uncertainty-aware Optimization, and the bundled nnU-Net-style trainer (SPEC §6).

The pieces, each usable on its own:

* :mod:`~auvcore.duo.weights` — class weights from S of the network's own logits;
* :mod:`~auvcore.duo.noise_head` — the parallel noise head and label purification;
* :mod:`~auvcore.duo.loss` — the per-class weighted Dice + BCE;
* :mod:`~auvcore.duo.model` — :class:`DUONet`, which makes any C-channel network DUO-capable;
* :mod:`~auvcore.duo.backbones` — MONAI DynUNet / SwinUNETR;
* :mod:`~auvcore.duo.plan`, :mod:`~auvcore.duo.data` — fingerprint, preprocessing, patches;
* :mod:`~auvcore.duo.config` — a run's settings and their defaults (no torch);
* :mod:`~auvcore.duo.trainer` — ``auv train``; :mod:`~auvcore.duo.predict` — ``auv predict``.

The names below are imported on first use, so ``auvcore.duo.config`` loads without torch.

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

from __future__ import annotations

from ..lazy import lazy_exports

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "DUONet": "model",
    "DUOOutput": "model",
    "LossParts": "loss",
    "SegmentationLoss": "loss",
    "NoiseHead": "noise_head",
    "noise_regulariser": "noise_head",
    "purify": "noise_head",
    "class_weights": "weights",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["DUONet", "DUOOutput", "LossParts", "NoiseHead", "SegmentationLoss", "class_weights", "noise_regulariser", "purify"]
