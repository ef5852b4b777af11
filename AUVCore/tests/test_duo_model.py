"""The DUO wrapper on MONAI backbones and on a user's own module."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from auvcore.duo.backbones import backbone_config, build_backbone, plan_dynunet
from auvcore.duo.model import DUONet, find_logit_layer


pytestmark = pytest.mark.usefixtures("one_thread")


def test_nnunet_style_plan_keeps_coarse_axis_until_spacings_even_out() -> None:
    kernels, strides = plan_dynunet((32, 64, 64), (4.0, 1.0, 1.0))
    assert strides[1] == [1, 2, 2] and kernels[0] == [1, 3, 3]
    assert len(kernels) == len(strides)


@pytest.mark.parametrize("name,patch,base", [("dynunet", (32, 32, 32), 8), ("swinunetr", (64, 64, 64), 12)])
def test_monai_backbones_become_duo_capable(name: str, patch: tuple[int, ...], base: int) -> None:
    torch.manual_seed(0)
    config = backbone_config(name, num_classes=3, patch=patch, spacing=(1.5, 1.5, 1.5), base_filters=base)
    model = DUONet(build_backbone(config), num_classes=3)
    with torch.no_grad():
        out = model(torch.randn(1, 1, *patch))
    assert out.logits.shape == out.noise.shape == (1, 3, *patch)
    assert 0 < float(out.scale) < 1


def test_swinunetr_rejects_a_small_patch() -> None:
    with pytest.raises(ValueError, match="at least 64"):
        backbone_config("swinunetr", 2, (32, 32, 32), (1.0, 1.0, 1.0))


def test_any_module_with_class_logits_can_be_wrapped() -> None:
    net = nn.Sequential(nn.Conv3d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv3d(6, 4, 1), nn.Identity())
    assert find_logit_layer(net, 4) == "2"
    out = DUONet(net, num_classes=4)(torch.randn(2, 1, 4, 8, 8))
    assert out.noise.shape == (2, 4, 4, 8, 8)


def test_named_feature_layer_without_in_channels() -> None:
    class Head(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :2]

    net = nn.Sequential(nn.Conv3d(1, 5, 3, padding=1), Head())
    with pytest.raises(ValueError, match="feature_channels"):
        DUONet(net, num_classes=2, feature_layer="1")
    out = DUONet(net, num_classes=2, feature_layer="1", feature_channels=5)(torch.randn(1, 1, 4, 6, 6))
    assert out.noise.shape == (1, 2, 4, 6, 6)


def test_without_noise_head_only_logits() -> None:
    net = nn.Conv3d(1, 2, 1)
    out = DUONet(net, num_classes=2, noise=False)(torch.randn(1, 1, 2, 4, 4))
    assert out.noise is None and out.scale is None
    assert not any("noise" in name for name, _ in DUONet(net, 2, noise=False).named_parameters())
