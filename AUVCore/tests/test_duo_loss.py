"""DUO core: class weights, noise regulariser, purified labels and the loss."""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceLoss

from auvcore.duo.config import DUO_FORMS, NOISE_FORMS
from auvcore.duo.forms import duo_targets
from auvcore.duo.loss import SegmentationLoss
from auvcore.duo.model import DUONet
from auvcore.duo.noise_head import NOISE_BOUND, NoiseHead, noise_regulariser, purify
from auvcore.duo.weights import batch_rows, class_weights, present_rows, weights_from_scales
from auvcore.spectrum import semantic_scale


pytestmark = pytest.mark.usefixtures("one_thread")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_batch_rows_stack_slices_of_every_sample() -> None:
    logits = torch.arange(2 * 3 * 4 * 5 * 6, dtype=torch.float32).reshape(2, 3, 4, 5, 6)
    z = batch_rows(logits)
    assert z.shape == (3, 8, 30)
    assert torch.equal(z[1, 4 + 2], logits[1, 1, 2].reshape(-1))  # sample 1, class 1, slice 2


def test_rank_one_class_gets_larger_weight_than_rich_class() -> None:
    g = _generator()
    rich = torch.randn(2, 1, 8, 16, 16, generator=g)  # high rank: S near 1 (easy)
    pattern = torch.randn(1, 1, 1, 16, 16, generator=g)
    poor = pattern * torch.randn(2, 1, 8, 1, 1, generator=g)  # every slice the same pattern: S = 0 (hard)
    logits = torch.cat([rich, poor], dim=1)
    scales = semantic_scale(batch_rows(logits))
    assert scales[0] > 0.9 and scales[1] < 1e-6
    weights = class_weights(logits)
    assert weights[1] > weights[0]
    assert math.isclose(float(weights.mean()), 1.0, rel_tol=1e-6)


def test_weights_are_monotone_and_mean_one() -> None:
    scales = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
    weights = weights_from_scales(scales)
    assert torch.all(weights[:-1] > weights[1:])
    assert math.isclose(float(weights.mean()), 1.0, rel_tol=1e-6)


def test_undefined_scale_gets_weight_one_and_mean_stays_one() -> None:
    g = _generator(1)
    logits = torch.randn(1, 3, 6, 8, 8, generator=g)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    labels[:, 1, :, 2:5, 2:5] = 1.0
    labels[:, 2, 3, 4, 4] = 1.0  # one slice only: S undefined
    weights = class_weights(logits, labels)
    assert float(weights[2]) == 1.0
    assert math.isclose(float(weights.mean()), 1.0, rel_tol=1e-6)
    assert present_rows(labels)[2].sum() == 1


def test_all_undefined_gives_unit_weights() -> None:
    logits = torch.randn(1, 2, 1, 4, 4, generator=_generator(2))  # one slice: S undefined everywhere
    assert class_weights(logits).tolist() == [1.0, 1.0]


def test_weights_carry_no_gradient() -> None:
    logits = torch.randn(1, 2, 4, 8, 8, generator=_generator(3), requires_grad=True)
    weights = class_weights(logits)
    assert not weights.requires_grad


def test_regulariser_minimum_is_standardised_noise() -> None:
    noise = torch.randn(2, 3, 6, 8, 8, generator=_generator(4))
    flat = noise.transpose(0, 1).reshape(3, -1)
    standard = (noise - flat.mean(1).view(1, 3, 1, 1, 1)) / flat.std(1).view(1, 3, 1, 1, 1)
    assert float(noise_regulariser(standard)) < 1e-10
    for moved in (standard + 0.3, standard * 1.5, standard * 0.5):
        assert float(noise_regulariser(moved)) > 0.05
    # It is the minimum along any direction: the gradient vanishes there.
    standard.requires_grad_(True)
    (grad,) = torch.autograd.grad(noise_regulariser(standard), standard)
    assert float(grad.abs().max()) < 1e-6


def test_purified_label_is_clipped_to_unit_interval() -> None:
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0])
    noise = torch.tensor([1.0, -1.0, 2.0, -2.0])
    purified = purify(labels, noise, torch.tensor(0.5))
    assert purified.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_duo_off_is_plain_dice_plus_bce() -> None:
    g = _generator(5)
    logits = torch.randn(2, 3, 6, 10, 10, generator=g)
    labels = (torch.rand(2, 3, 6, 10, 10, generator=g) > 0.6).float()
    parts = SegmentationLoss(duo=False)(logits, labels)
    plain = DiceLoss(sigmoid=True, batch=True)(logits, labels) + torch.nn.BCEWithLogitsLoss()(logits, labels)
    assert torch.allclose(parts.total, plain, atol=1e-6)
    assert float(parts.regulariser) == 0.0


def test_duo_with_zero_noise_scale_and_equal_weights_matches_plain() -> None:
    g = _generator(6)
    logits = torch.randn(2, 2, 6, 10, 10, generator=g)
    labels = (torch.rand(2, 2, 6, 10, 10, generator=g) > 0.6).float()
    noise = torch.randn(2, 2, 6, 10, 10, generator=g)
    duo = SegmentationLoss(duo=True, regulariser_weight=0.0)(logits, labels, noise, torch.tensor(0.0))
    expected = (duo.weights * (duo.dice + duo.bce)).mean()
    assert torch.allclose(duo.segmentation, expected)
    plain = SegmentationLoss(duo=False)(logits, labels)
    assert torch.allclose((duo.dice + duo.bce), (plain.dice + plain.bce))


def test_duo_loss_needs_the_noise_head() -> None:
    logits = torch.randn(1, 2, 4, 8, 8)
    with pytest.raises(ValueError, match="noise head"):
        SegmentationLoss(duo=True)(logits, torch.zeros_like(logits))


def test_gradients_reach_segmentation_and_noise_heads() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.LeakyReLU(), torch.nn.Conv3d(8, 2, 1))
    model = DUONet(net, num_classes=2)
    image = torch.randn(2, 1, 6, 12, 12)
    labels = torch.zeros(2, 2, 6, 12, 12)
    labels[:, 0, :, 3:9, 3:9] = 1.0
    labels[:, 1, 1:5, 5:11, 1:6] = 1.0
    out = model(image)
    SegmentationLoss(duo=True)(out.logits, labels, out.noise, out.scale).total.backward()
    segmentation_head = net[2].weight.grad
    noise_first, noise_last = model.noise_head.body[0].weight.grad, model.noise_head.body[-1].weight.grad
    for grad in (segmentation_head, noise_first, noise_last, model.noise_head.raw_scale.grad):
        assert grad is not None and float(grad.abs().sum()) > 0


def test_noise_head_scale_is_bounded() -> None:
    head = NoiseHead(4, 2, initial_scale=0.05, max_scale=0.5)
    assert math.isclose(float(head.scale().detach()), 0.05, rel_tol=1e-5)
    with torch.no_grad():
        head.raw_scale.fill_(50.0)
    assert float(head.scale().detach()) <= 0.5


def test_noise_is_bounded_so_erasing_a_sparse_class_costs_the_regulariser() -> None:
    """Unbounded, a channel 0 almost everywhere and ~1/sqrt(f) on a sparse class meets mean 0 / variance 1 exactly."""
    foreground = torch.zeros(1, 1, 10, 10, 10, dtype=torch.bool)
    foreground[..., :1, :1, :] = True  # f = 1%
    f = foreground.float().mean()
    erasing = torch.where(foreground, (1 - f) / torch.sqrt(f * (1 - f)), -torch.sqrt(f / (1 - f)))
    assert float(noise_regulariser(erasing)) < 1e-4  # the loophole the bound closes
    head = NoiseHead(1, 1)
    head.body = torch.nn.Identity()  # the head's last layer could produce exactly this pattern
    bounded = head(erasing)
    assert float(bounded.abs().max()) < NOISE_BOUND
    assert float(noise_regulariser(bounded)) > 0.5


# ---------------------------------------------------------------- the DUO forms

@pytest.mark.parametrize("form", DUO_FORMS)
def test_every_form_gives_a_finite_loss_with_gradients_where_it_should(form: str):
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 3, 8, 8, requires_grad=True)
    labels = (torch.rand(2, 2, 3, 8, 8) > 0.6).float()
    raw_noise = torch.randn(2, 2, 3, 8, 8, requires_grad=True)
    scale = torch.tensor(0.2, requires_grad=True)
    noise = None if form == "weights" else raw_noise
    parts = SegmentationLoss(duo=True, form=form)(logits, labels, noise, None if form == "weights" else scale)
    parts.total.backward()
    assert torch.isfinite(parts.total) and logits.grad is not None and logits.grad.abs().sum() > 0
    if form != "weights":
        assert raw_noise.grad is not None and raw_noise.grad.abs().sum() > 0


def test_hard_dice_keeps_dice_on_the_label_and_boundary_purifies_only_the_band():
    labels = torch.zeros(1, 1, 1, 9, 9)
    labels[..., 2:7, 2:7] = 1
    logits = torch.zeros_like(labels)
    noise = torch.ones_like(labels)
    scale = torch.tensor(0.3)
    hard = duo_targets("hard_dice", labels, logits, noise, scale)
    assert torch.equal(hard.dice, labels) and not torch.equal(hard.bce, labels)
    band = duo_targets("boundary", labels, logits, noise, scale).dice
    assert band[0, 0, 0, 4, 4] == 1.0  # deep inside the structure: untouched
    assert band[0, 0, 0, 2, 2] == pytest.approx(0.7)  # on its edge: purified


def test_detached_form_does_not_let_the_segmentation_loss_reach_the_noise_head():
    labels = (torch.rand(1, 1, 2, 8, 8) > 0.5).float()
    logits = torch.randn(1, 1, 2, 8, 8)
    noise = torch.randn(1, 1, 2, 8, 8, requires_grad=True)
    targets = duo_targets("detached", labels, logits, noise, torch.tensor(0.2))
    assert not targets.dice.requires_grad and targets.noise_loss.requires_grad
    with pytest.raises(ValueError, match="unknown DUO form 'sideways'"):
        duo_targets("sideways", labels, logits, noise, torch.tensor(0.2))


@pytest.mark.parametrize("form", sorted(NOISE_FORMS))
def test_in_the_warm_up_every_form_trains_on_the_labels_as_given(form: str):
    torch.manual_seed(0)
    labels = (torch.rand(1, 1, 2, 8, 8) > 0.5).float()
    logits = torch.randn(1, 1, 2, 8, 8)
    noise = torch.randn(1, 1, 2, 8, 8, requires_grad=True)
    scale = torch.tensor(0.3)
    warm_up = duo_targets(form, labels, logits, noise, scale, purifying=False)
    assert torch.equal(warm_up.dice, labels) and torch.equal(warm_up.bce, labels)
    purifying = duo_targets(form, labels, logits, noise, scale)
    assert not torch.equal(purifying.bce, labels)
    # detached's head learns the residual in the warm-up too; it never reaches the segmentation targets
    assert warm_up.noise_loss.requires_grad == (form == "detached")


def test_a_detached_head_that_fits_the_residual_gives_the_bootstrapping_target():
    """Applying all of an exact correction would make the target the network's own prediction."""
    from auvcore.duo.forms import DETACHED_SHARE

    labels = (torch.rand(1, 1, 2, 8, 8) > 0.5).float()
    logits = torch.randn(1, 1, 2, 8, 8)
    predicted = torch.sigmoid(logits)
    scale = torch.tensor(0.5)
    noise = (labels - predicted) / scale  # the correction scale * n is the residual y - p
    targets = duo_targets("detached", labels, logits, noise, scale)
    expected = (1 - DETACHED_SHARE) * labels + DETACHED_SHARE * predicted
    assert torch.allclose(targets.dice, expected, atol=1e-6)
    assert float(targets.noise_loss) < 1e-10
