"""The boundary scorers on the real small CT: a planted boundary error raises them."""

from __future__ import annotations

import numpy as np
import pytest

from auvcore.audit.corruptions import plant
from auvcore.imaging import load_case, normalise_intensity
from auvcore.scorers.case_scores import CaseInputs, boundary_distance, boundary_logits

LIVER = 5


@pytest.fixture(scope="module")
def liver_scores(litemedsam, small_cohort) -> dict[str, tuple[float, float]]:
    """(boundary_logits, boundary_distance) of the liver, clean and with each planted boundary error."""
    case = load_case(small_cohort / "ct.nii.gz", small_cohort / "ct_full.nii.gz")
    volume = normalise_intensity(case.image, "ct")
    scores = {}
    for kind in ("clean", "dilate", "erode", "shift"):
        labels = case.labels if kind == "clean" else plant(kind, volume, case.labels, np.random.default_rng(0), target=LIVER)[1]
        # The image key lets the backend encode the slices once for the four label maps.
        features = litemedsam.classwise_features(volume, labels, [LIVER], image_key="small ct")
        inputs = CaseInputs(volume, labels, [LIVER], case.spacing, features)
        scores[kind] = (float(boundary_logits(inputs).per_class[0]), float(boundary_distance(inputs).per_class[0]))
    return scores


@pytest.mark.parametrize("kind", ["dilate", "erode", "shift"])
def test_each_planted_boundary_error_raises_both_scorers(liver_scores, kind):
    clean, planted = liver_scores["clean"], liver_scores[kind]
    assert planted[0] > clean[0] + 0.05, kind  # measured: 0.28 clean, 0.46-0.47 planted
    assert planted[1] > clean[1] + 1.0, kind  # measured: 2.2 mm clean, 4.5-6.7 mm planted


def test_the_clean_liver_boundary_is_where_the_model_puts_it(liver_scores):
    logits, distance = liver_scores["clean"]
    assert logits < 0.35
    assert distance < 3.0  # about one 3 mm voxel
