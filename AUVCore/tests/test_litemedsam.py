"""The real embedded LiteMedSAM on real volumes (small crops so it stays quick on a CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auvcore.backends.litemedsam import INPUT_SIZE, prepare_slices
from auvcore.imaging import load_case, normalise_intensity
from auvcore.prompts import slice_boxes
from auvcore.spectrum import class_spectra


@pytest.fixture(scope="module")
def ct_case(small_cohort):
    case = load_case(small_cohort / "ct.nii.gz", small_cohort / "ct_full.nii.gz")
    return normalise_intensity(case.image, "ct"), case.labels


def test_preprocessing_is_upstream_litemedsam():
    volume = np.random.default_rng(0).uniform(0.2, 0.7, size=(2, 101, 122)).astype(np.float32)
    images, (h, w) = prepare_slices(volume, [1])
    assert images.shape == (1, 3, INPUT_SIZE, INPUT_SIZE)
    assert (h, w) == (212, 256)  # longest side to 256, aspect kept
    valid = images[0, 0, :h, :w]
    assert valid.min().item() == pytest.approx(0.0) and valid.max().item() == pytest.approx(1.0)
    assert images[0, :, h:, :].abs().max().item() == 0.0  # zero padding below
    assert torch.equal(images[0, 0], images[0, 2])


def test_classwise_features_on_real_ct(litemedsam, ct_case):
    volume, labels = ct_case
    class_ids = [1, 2, 5, 6]
    features = litemedsam.classwise_features(volume, labels, class_ids, image_key="small-ct")
    prompts = slice_boxes(labels, class_ids)
    assert features.z.shape == (4, volume.shape[0], 212 * 256)
    assert torch.equal(features.present, torch.from_numpy(prompts.present))
    assert features.slices_encoded == int(prompts.present.any(axis=0).sum())
    assert torch.isfinite(features.z).all()
    assert (features.z[~features.present] == 0).all()
    # The decoder segments what the box shows: logits are positive inside the labelled organ.
    liver = class_ids.index(5)
    d = int(np.argmax(prompts.areas[liver]))
    logits = features.z[liver, d].reshape(212, 256)
    inside = torch.nn.functional.interpolate(
        torch.from_numpy((labels[d] == 5).astype(np.float32))[None, None], size=(212, 256), mode="nearest")[0, 0] > 0
    assert (logits[inside] > 0).float().mean() > 0.8
    assert (logits[~inside] > 0).float().mean() < 0.2
    scales = class_spectra(features.z, features.present)
    assert all(0.0 <= v <= 1.0 for v in scales.values.tolist())

    again = litemedsam.classwise_features(volume, labels, class_ids, image_key="small-ct")
    assert again.slices_encoded == 0  # embeddings reused for the same image
    torch.testing.assert_close(again.z, features.z)


def test_batched_decoder_equals_one_box_at_a_time(litemedsam, ct_case):
    volume, labels = ct_case
    class_ids = [1, 2, 5, 6]
    features = litemedsam.classwise_features(volume, labels, class_ids, image_key="small-ct")
    prompts = slice_boxes(labels, class_ids)
    d = int(np.argmax(prompts.present.sum(axis=0)))
    images, (h, w) = prepare_slices(volume, [d])
    model = litemedsam.model
    with torch.inference_mode():
        scale = INPUT_SIZE / max(volume.shape[1:])
        for i in np.flatnonzero(prompts.present[:, d]):
            box = torch.from_numpy(prompts.boxes[i, d] * scale)[None, None]
            logits = model(images, box)  # upstream forward: encoder + one box
            torch.testing.assert_close(features.z[i, d], logits[0, 0, :h, :w].reshape(-1), atol=2e-3, rtol=1e-3)


def test_image_mode_embeddings(litemedsam, ct_case):
    volume, _ = ct_case
    features = litemedsam.image_features(volume, image_key="small-ct")
    assert features.z.shape == (1, volume.shape[0], 256 * 53 * 64)
    assert features.present.all()
    value = class_spectra(features.z, features.present).values.item()
    assert 0.0 < value < 1.0
