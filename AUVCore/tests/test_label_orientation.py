"""A label map stored with its axes flipped or permuted lies on the image's grid: load_case accepts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from auvcore.errors import InputError
from auvcore.imaging import load_case
from auvcore.sample_data import fetch_dicom_case

from .conftest import REPO_ROOT

DICOM_DIR = REPO_ROOT / "Testing" / "data" / "dicom_ct"


def test_the_dicom_series_loads_with_totalsegmentators_label():
    """The sdist's label of its DICOM CT is stored with the y axis flipped against the series."""
    series, label = fetch_dicom_case(DICOM_DIR)
    stored = sitk.ReadImage(str(label))
    case = load_case(series, label)
    assert case.labels is not None and case.labels.shape == case.image.shape == (20, 512, 512)
    assert case.geometry.direction != stored.GetDirection()  # the flip this test is about is really there
    lps = sitk.GetArrayFromImage(sitk.DICOMOrient(stored, "LPS"))
    assert np.array_equal(case.labels, lps) and case.labels.max() > 0


def _flipped(image: sitk.Image, axes: tuple[bool, bool, bool]) -> sitk.Image:
    """The same voxels on the same physical grid, stored with the given axes reversed."""
    return sitk.Flip(image, list(axes))


def test_a_flipped_and_permuted_copy_of_a_label_gives_the_same_labels(sample_cohort: Path, tmp_path: Path):
    image, label = sample_cohort / "example_mr_sm.nii.gz", sample_cohort / "example_seg_mr.nii.gz"
    flipped = tmp_path / "flipped.nii.gz"
    sitk.WriteImage(_flipped(sitk.ReadImage(str(label)), (False, True, True)), str(flipped))
    permuted = tmp_path / "permuted.nii.gz"
    sitk.WriteImage(sitk.PermuteAxes(sitk.ReadImage(str(label)), [1, 0, 2]), str(permuted))
    reference = load_case(image, label).labels
    for copy in (flipped, permuted):
        assert np.array_equal(load_case(image, copy).labels, reference)


def test_a_flipped_direction_on_another_grid_is_still_refused(sample_cohort: Path, tmp_path: Path):
    """Flipping the direction without moving the origin puts the label elsewhere in space."""
    image, label = sample_cohort / "example_mr_sm.nii.gz", sample_cohort / "example_seg_mr.nii.gz"
    moved = sitk.ReadImage(str(label))
    direction = np.array(moved.GetDirection()).reshape(3, 3)
    direction[:, 1] *= -1
    moved.SetDirection(direction.ravel().tolist())
    path = tmp_path / "moved.nii.gz"
    sitk.WriteImage(moved, str(path))
    with pytest.raises(InputError, match=r"moved.nii.gz: origin .* differs from the image .*both oriented to LPS"):
        load_case(image, path)
