"""The scorers beside the paper's measure, on small arrays whose answer is known."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from auvcore.backends.base import CaseFeatures
from auvcore.scorers import SCORERS, ClassSetWarning, ScoreScale, parse_scorers, warn_if_class_sets_differ
from auvcore.scorers.case_scores import (
    CaseInputs,
    NO_GRID,
    agreement,
    boundary_distance,
    boundary_gradient,
    boundary_logits,
    class_prototypes,
    consistency,
    contrast,
    fisher,
    homogeneity,
    image_auv,
    variance,
)
from auvcore.scorers.cohort_scores import identity_scores, mahalanobis_scores, prototype_scores
from auvcore.scales import cohort_auv

DEPTH, SIZE = 4, 16


def _square(depth: int = DEPTH, low: int = 4, high: int = 12) -> np.ndarray:
    labels = np.zeros((depth, SIZE, SIZE), np.int64)
    labels[:, low:high, low:high] = 1
    return labels


def _inputs(labels: np.ndarray, logits: np.ndarray | None = None, embeddings: dict | None = None,
            volume: np.ndarray | None = None) -> CaseInputs:
    """One class (id 1); mask logits on the label's own grid; embeddings one channel-vector per pixel."""
    present = torch.from_numpy((labels == 1).any(axis=(1, 2)))[None]
    z = torch.from_numpy(np.ascontiguousarray(
        logits if logits is not None else np.where(labels == 1, 5.0, -5.0), dtype=np.float32)).reshape(1, labels.shape[0], -1)
    features = CaseFeatures(z, present, grid=labels.shape[1:], embeddings=embeddings)
    volume = volume if volume is not None else labels.astype(np.float32)
    return CaseInputs(volume, labels, [1], (3.0, 1.0, 1.0), features)


def _embeddings(labels: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> dict[int, torch.Tensor]:
    """(K, H, W) per slice: ``inside`` where the class is, ``outside`` elsewhere."""
    return {d: torch.from_numpy(np.where(labels[d] == 1, inside[:, None, None], outside[:, None, None]).astype(np.float32))
            for d in range(labels.shape[0])}


def test_agreement_is_zero_for_a_mask_matching_the_label_and_grows_with_a_shift():
    labels = _square()
    assert agreement(_inputs(labels)).per_class[0] == 0.0
    shifted = np.roll(labels, 2, axis=2)
    result = agreement(_inputs(shifted, logits=np.where(labels == 1, 5.0, -5.0)))
    assert result.per_class[0] == pytest.approx(1 - 2 * 48 / 128)  # 6 of 8 columns overlap on every slice
    assert np.allclose(result.per_slice[0], result.per_class[0])


def test_fisher_is_low_when_the_logits_separate_the_label_and_half_when_they_do_not():
    labels = _square()
    separated = fisher(_inputs(labels, logits=np.where(labels == 1, 5.0, -5.0) + np.random.default_rng(0).normal(0, 0.1, labels.shape)))
    blind = fisher(_inputs(labels, logits=np.random.default_rng(1).normal(size=labels.shape)))
    assert separated.per_class[0] < 1e-3
    assert blind.per_class[0] > 0.9


def test_variance_is_the_mean_column_variance_over_the_kept_rows():
    labels = _square()
    logits = np.random.default_rng(2).normal(size=labels.shape)
    expected = logits.reshape(DEPTH, -1).var(axis=0).mean()
    assert variance(_inputs(labels, logits=logits)).per_class[0] == pytest.approx(expected)


def test_boundary_gradient_prefers_a_label_on_an_image_edge():
    labels = _square()
    on_edge = labels.astype(np.float32)
    off_edge = np.roll(labels, 3, axis=2).astype(np.float32)  # the bright square is elsewhere
    assert boundary_gradient(_inputs(labels, volume=on_edge)).per_class[0] < boundary_gradient(_inputs(labels, volume=off_edge)).per_class[0]



def test_boundary_logits_is_low_for_a_sure_mask_on_the_label_and_grows_with_a_shift():
    labels = _square()
    logits = np.where(labels == 1, 5.0, -5.0)
    assert boundary_logits(_inputs(labels, logits=logits)).per_class[0] == pytest.approx(1 / (1 + np.exp(5.0)), rel=1e-5)  # float32 logits
    shifted = boundary_logits(_inputs(np.roll(labels, 2, axis=2), logits=logits))
    assert shifted.per_class[0] > 0.25 and np.allclose(shifted.per_slice[0], shifted.per_class[0])


def test_boundary_distance_is_zero_on_the_label_and_its_equivalent_diameter_without_a_mask():
    labels = _square()
    assert boundary_distance(_inputs(labels)).per_class[0] == 0.0
    assert 0 < boundary_distance(_inputs(np.roll(labels, 2, axis=2), logits=np.where(labels == 1, 5.0, -5.0))).per_class[0] <= 2.0
    empty = boundary_distance(_inputs(labels, logits=np.full(labels.shape, -5.0)))
    assert empty.per_class[0] == pytest.approx(2 * np.sqrt(64 / np.pi))  # the 8 x 8 mm square's equivalent diameter


def test_boundary_scorers_are_nan_with_a_reason_without_mask_logits_on_a_grid():
    inputs = _inputs(_square())
    inputs.features.grid = None
    for scorer in (boundary_logits, boundary_distance):
        result = scorer(inputs)
        assert np.isnan(result.per_class).all() and np.isnan(result.per_slice).all() and result.reason == NO_GRID

def test_contrast_and_homogeneity_on_embeddings_that_do_or_do_not_follow_the_label():
    labels = _square()
    follows = _inputs(labels, embeddings=_embeddings(labels, np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    flat = _inputs(labels, embeddings=_embeddings(labels, np.array([1.0, 1.0]), np.array([1.0, 1.0])))
    rng = np.random.default_rng(3)
    noise = {d: torch.from_numpy(rng.normal(size=(2, SIZE, SIZE)).astype(np.float32)) for d in range(DEPTH)}
    assert contrast(follows).per_class[0] == pytest.approx(0.0, abs=1e-9)  # orthogonal inside and outside
    assert contrast(flat).per_class[0] == pytest.approx(1.0)  # the features do not see the boundary
    assert homogeneity(follows).per_class[0] == pytest.approx(0.0, abs=1e-9)
    assert homogeneity(_inputs(labels, embeddings=noise)).per_class[0] > 0.5


def test_consistency_counts_a_gap_in_the_slice_range_as_one():
    labels = _square(depth=6)
    embeddings = _embeddings(labels, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert consistency(_inputs(labels, embeddings=embeddings)).per_class[0] == pytest.approx(0.0, abs=1e-9)
    gapped = labels.copy()
    gapped[3] = 0
    result = consistency(_inputs(gapped, embeddings=_embeddings(gapped, np.array([1.0, 0.0]), np.array([0.0, 1.0]))))
    assert result.per_class[0] == 1.0 and result.per_slice[0, 3] == 1.0 and result.per_slice[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_prototypes_are_the_inside_mean_and_missing_without_embeddings():
    labels = _square()
    inputs = _inputs(labels, embeddings=_embeddings(labels, np.array([2.0, 1.0]), np.array([0.0, 9.0])))
    assert class_prototypes(inputs)[0] == pytest.approx([2.0, 1.0])
    assert class_prototypes(_inputs(labels)) is None
    assert contrast(_inputs(labels)).reason == "the backend gives no slice embeddings"


def test_image_auv_is_one_minus_s_of_the_slice_embeddings():
    labels = _square()
    rank_one = _inputs(labels, embeddings=_embeddings(labels, np.array([1.0, 0.0]), np.array([0.0, 0.0])))
    assert image_auv(rank_one).per_class[0] == pytest.approx(1.0, abs=1e-6)  # identical slices: S = 0


def test_prototype_and_mahalanobis_single_out_the_odd_case():
    rng = np.random.default_rng(4)
    base = rng.normal(size=8)
    cases = [{"liver": base + rng.normal(0, 0.05, 8)} for _ in range(10)] + [{"liver": -base}]
    for scores in (prototype_scores(cases), mahalanobis_scores(cases)):
        values = [s["liver"] for s in scores]
        assert int(np.argmax(values)) == 10
    assert prototype_scores(cases[:2]) == [{}, {}]  # fewer than 3 cases hold the class: no value


def test_identity_finds_two_exchanged_labels_and_not_an_unusual_structure():
    """A swap moves each of the two prototypes onto the other class's centre; an odd but correct structure moves
    away from its own centre without coming closer to another's."""
    rng = np.random.default_rng(5)
    centres = {name: rng.normal(size=16) for name in ("vertebrae_L1", "vertebrae_L2", "spinal_cord", "aorta")}
    cases = [{name: centre + rng.normal(0, 0.3, 16) for name, centre in centres.items()} for _ in range(12)]
    cases[3]["vertebrae_L1"], cases[3]["spinal_cord"] = cases[3]["spinal_cord"], cases[3]["vertebrae_L1"]
    cases[7]["aorta"] = rng.normal(size=16)  # unusual, but no other class
    modalities = ["ct"] * 12
    scores = pd.DataFrame(identity_scores(cases, modalities))
    for name in ("vertebrae_L1", "spinal_cord"):
        assert scores[name].idxmax() == 3 and scores[name][3] > 0 > scores[name].drop(index=3).max()
    assert scores.loc[7, "aorta"] < 0  # mahalanobis' kind of finding, not identity's
    assert scores.loc[3, "aorta"] < 0 and scores.loc[3, "vertebrae_L2"] < 0  # the case's other classes stay clean
    # Modalities apart: where MR embeds the spinal cord as CT does a vertebra, clean MR cases are not swaps.
    ct = [cases[i] for i in (0, 1, 2, 4, 5)]  # clean ones
    mr = [{"vertebrae_L1": cases[i]["spinal_cord"], "spinal_cord": cases[i]["vertebrae_L1"], "aorta": cases[i]["aorta"]}
          for i in (6, 8, 9, 10, 11)]
    apart = pd.DataFrame(identity_scores(ct + mr, ["ct"] * 5 + ["mr"] * 5))
    assert (apart["vertebrae_L1"] < 0).all()
    pooled = pd.DataFrame(identity_scores(ct + mr, ["ct"] * 10))
    assert (pooled["vertebrae_L1"] > apart["vertebrae_L1"]).all()  # one centre for both modalities blurs the classes


def _matrix() -> pd.DataFrame:
    return pd.DataFrame({"liver": [0.9, 0.8, 0.7, 0.2], "spleen": [0.5, np.nan, 0.6, 0.55]}, index=list("abcd"))


def test_the_paper_aggregation_of_auv_is_the_papers_cohort_auv():
    matrix = _matrix()
    scale = ScoreScale.fit(matrix, "paper", negative_log=True)
    expected = cohort_auv(matrix.sum(axis=1).to_numpy()).values
    assert scale.place(matrix) == pytest.approx(expected)


def test_mean_and_max_normalise_each_class_over_the_cases_holding_it():
    matrix = _matrix()
    scale = ScoreScale.fit(matrix, "max")
    z = scale.class_z(matrix)
    median, spread = np.median([0.9, 0.8, 0.7, 0.2]), 1.4826 * np.median(np.abs(np.array([0.9, 0.8, 0.7, 0.2]) - 0.75))
    assert z.loc["a", "liver"] == pytest.approx((0.9 - median) / spread)
    assert math.isnan(z.loc["b", "spleen"])
    placed = scale.place(matrix)
    assert placed.min() == 0.0 and placed.max() == 1.0
    assert ScoreScale.from_dict(scale.to_dict()).place(matrix) == pytest.approx(placed)
    outside = pd.DataFrame({"liver": [5.0]}, index=["new"])
    assert scale.place(outside)[0] == 1.0  # placed cases are clipped to the cohort's range


def test_label_check_keeps_its_z_units_so_a_quiet_class_does_not_outrank_a_busy_one():
    """label_check is a sum of positive robust z, 0 for most structures of a class; standardising it again by that
    class's spread put a small chance sum in a quiet class above a large one in a busy class."""
    from auvcore.scorers.registry import scale_options

    sums = pd.DataFrame({"liver": [0.0, 0.0, 0.05, 0.0, 0.5], "aorta": [1.0, 2.0, 3.0, 4.0, 6.0]}, index=list("abcde"))
    restandardised = ScoreScale.fit(sums, "max").class_z(sums)
    assert restandardised.loc["e", "liver"] > restandardised.loc["e", "aorta"]  # what it did
    z = ScoreScale.fit(sums, "max", **scale_options("label_check")).class_z(sums)
    assert z.equals(sums) and z.loc["e", "aorta"] > z.loc["e", "liver"]
    for name in ("mahalanobis", "auv"):
        assert scale_options(name)["in_z_units"] is False
    scale = ScoreScale.fit(sums, "calibrated", **scale_options("label_check"))
    assert ScoreScale.from_dict(scale.to_dict()).class_z(sums).equals(sums)  # a saved reference keeps it


def test_class_set_warning_only_for_the_paper_sum_over_different_class_sets():
    with pytest.warns(ClassSetWarning, match="1 to 2 classes"):
        assert warn_if_class_sets_differ(_matrix(), "paper")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_class_sets_differ(_matrix(), "mean")
        assert not warn_if_class_sets_differ(_matrix().drop(index="b"), "paper")


def test_parse_scorers():
    assert parse_scorers("agreement, auv") == ("auv", "agreement")
    assert parse_scorers("all") == tuple(n for n in SCORERS if n != "cleanlab")  # it needs --oof: named, never implied
    assert parse_scorers("all,cleanlab") == SCORERS
    assert parse_scorers("label_check") == ("auv", "agreement", "boundary_gradient", "boundary_distance", "consistency",
                                            "stray_voxels", "edge_offset", "shift", "missed_slices", "mahalanobis",
                                            "identity", "label_check")
    with pytest.raises(ValueError, match="unknown scorer"):
        parse_scorers("auv,nonsense")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=12), st.sampled_from(["mean", "max"]))
def test_case_scores_lie_in_the_unit_interval_and_keep_the_order_of_a_single_class(values, aggregate):
    matrix = pd.DataFrame({"c": values})
    placed = ScoreScale.fit(matrix, aggregate).place(matrix)
    assert np.all((placed >= 0) & (placed <= 1))
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(placed[order]) >= -1e-12)
