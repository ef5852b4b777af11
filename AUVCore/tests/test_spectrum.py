"""Property tests of the measure (SPEC §3): each can fail if the formula is wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from auvcore import CohortReference, class_spectra, cohort_auv, semantic_scale, spectrum
from auvcore.spectrum import TOO_FEW_ROWS, ZERO_ENERGY

METHODS = ["gram", "svd"]


def numpy_reference(z: np.ndarray) -> np.ndarray:
    """S per class straight from the definition, one numpy SVD per class, float64."""
    out = []
    for rows in z.reshape(z.shape[0], z.shape[1], -1).astype(np.float64):
        sigma = np.linalg.svd(rows, compute_uv=False)
        energy = sigma**2
        p = energy / energy.sum()
        p = p[p > 0]
        out.append(-(p * np.log(p)).sum() / np.log(min(rows.shape)))
    return np.array(out)


shapes = st.tuples(st.integers(1, 4), st.integers(2, 12), st.integers(2, 40))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), method=st.sampled_from(METHODS))
def test_agrees_with_numpy_reference(shape, seed, method):
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    expected = numpy_reference(z.numpy())
    # The float32 Gram cannot tell an eigenvalue below ~eps32 of the largest from round-off; a small random
    # square matrix can have one (seed 6, 6 x 6: 3.8e-6), so the Gram path is held to 1e-5 here, 1e-6 on features.
    np.testing.assert_allclose(semantic_scale(z, method=method).numpy(), expected, atol=1e-6 if method == "svd" else 1e-5)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), method=st.sampled_from(METHODS))
def test_rank_one_gives_zero(shape, seed, method):
    g = torch.Generator().manual_seed(seed)
    classes, rows, cols = shape
    z = torch.randn(classes, rows, 1, generator=g) * torch.randn(classes, 1, cols, generator=g)
    assert semantic_scale(z, method=method).max().item() < 1e-6


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rows,cols", [(4, 4), (5, 64), (16, 16)])
def test_orthogonal_rows_with_equal_energy_give_one(method, rows, cols):
    q, _ = torch.linalg.qr(torch.randn(cols, cols, dtype=torch.float64))
    z = (3.0 * q[:rows]).float().unsqueeze(0)
    assert semantic_scale(z, method=method).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_invariant_to_scale_row_order_and_orthogonal_columns(method):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(3, 10, 48, generator=g) + torch.randn(3, 1, 48, generator=g)  # correlated rows
    base = semantic_scale(z, method=method)
    q, _ = torch.linalg.qr(torch.randn(48, 48, generator=g, dtype=torch.float64))
    permuted = z[:, torch.randperm(10, generator=g)]
    rotated = (z.double() @ q).float()
    for changed in (z * 123.0, z * 1e-3, permuted, rotated):
        torch.testing.assert_close(semantic_scale(changed, method=method), base, atol=1e-5, rtol=0)


def test_gram_and_svd_paths_agree_on_realistic_correlated_features():
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(6, 1, 4096, generator=g)
    noise = torch.randn(6, 40, 4096, generator=g) * torch.logspace(-3, 0, 6).reshape(6, 1, 1)
    z = shared + noise
    present = torch.rand(6, 40, generator=g) > 0.3
    gram = semantic_scale(z, present, method="gram")
    svd = semantic_scale(z, present, method="svd")
    torch.testing.assert_close(gram, svd, atol=1e-6, rtol=0)
    assert gram.min() < 0.05 < gram.max()  # the data spans low and high ranks


def test_gram_path_within_1e6_of_float64_on_the_benchmark_shape():
    """C=8, D=120, 128 x 128 float32 (Testing/benchmarks/spectrum_speed.py), low-rank plus small noise."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, 120, 5, generator=g) @ torch.randn(8, 5, 128 * 128, generator=g)
    z = z + 1e-3 * torch.randn(8, 120, 128 * 128, generator=g)
    np.testing.assert_allclose(semantic_scale(z).numpy(), numpy_reference(z.numpy()), atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_class_groups_under_a_memory_budget_give_the_same_scales(method, monkeypatch):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, 12, 300, generator=g) + torch.randn(5, 1, 300, generator=g)
    present = torch.rand(5, 12, generator=g) > 0.4
    whole = class_spectra(z, present, method).values
    monkeypatch.setattr(spectrum, "PACK_BUDGET_BYTES", 1)  # one class per group
    torch.testing.assert_close(class_spectra(z, present, method).values, whole, atol=1e-8, rtol=0)  # other BLAS blocking


def test_duo_class_weights_use_the_same_measure():
    from auvcore.duo import weights

    logits = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    expected = weights.weights_from_scales(semantic_scale(weights.batch_rows(logits)))
    torch.testing.assert_close(weights.class_weights(logits), expected)
    assert weights.semantic_scale is semantic_scale


def test_present_keeps_only_the_chosen_rows():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 9, 30, generator=g)
    present = torch.zeros(2, 9, dtype=torch.bool)
    present[0, [1, 4, 5]] = True
    present[1, 2:8] = True
    result = class_spectra(z, present)
    assert result.rows.tolist() == [3, 6]
    expected = [numpy_reference(z[0:1, [1, 4, 5]].numpy())[0], numpy_reference(z[1:2, 2:8].numpy())[0]]
    np.testing.assert_allclose(result.values.numpy(), expected, atol=1e-6)


def test_undefined_classes_are_nan_with_a_reason():
    z = torch.randn(3, 5, 20)
    z[2] = 0.0
    present = torch.ones(3, 5, dtype=torch.bool)
    present[1, 1:] = False  # one row only
    result = class_spectra(z, present)
    assert math.isfinite(result.values[0].item())
    assert math.isnan(result.values[1].item()) and math.isnan(result.values[2].item())
    assert result.missing == {1: TOO_FEW_ROWS, 2: ZERO_ENERGY}
    assert result.total() == pytest.approx(result.values[0].item())


def test_four_dimensional_input_equals_flattened():
    z = torch.randn(2, 6, 8, 8)
    torch.testing.assert_close(semantic_scale(z), semantic_scale(z.reshape(2, 6, 64)))


def test_bad_tensors_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        semantic_scale(torch.full((1, 3, 4), math.nan))
    with pytest.raises(ValueError, match="shape"):
        semantic_scale(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="present"):
        semantic_scale(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    z = torch.randn(4, 30, 2048) + torch.randn(4, 1, 2048)
    torch.testing.assert_close(semantic_scale(z.cuda()), semantic_scale(z), atol=1e-4, rtol=0)


def test_cohort_auv_is_min_max_of_negative_log_s():
    scales = np.array([2.0, 1.0, 0.25, np.nan])
    result = cohort_auv(scales)
    a = -np.log(scales[:3])
    np.testing.assert_allclose(result.values[:3], (a - a.min()) / (a.max() - a.min()))
    assert math.isnan(result.values[3])
    assert result.reference.n_cases == 3
    assert result.values[np.argmin(scales[:3])] == 1.0  # lowest S is the hardest case


def test_reference_places_new_cases_clipped_and_round_trips():
    result = cohort_auv([2.0, 1.0, 0.5])
    reference = CohortReference.from_dict(result.reference.to_dict())
    assert reference == result.reference
    placed = reference.place([4.0, 1.0, 0.1, math.nan])
    assert placed[0] == 0.0 and placed[2] == 1.0 and math.isnan(placed[3])
    assert placed[1] == pytest.approx(result.values[1])


def test_degenerate_cohorts():
    assert cohort_auv([1.3]).values.tolist() == [0.0]
    assert cohort_auv([0.7, 0.7]).values.tolist() == [0.0, 0.0]
    zero = cohort_auv([0.0, 1.0, 2.0])
    assert zero.values[0] == 1.0 and zero.values[2] == 0.0
