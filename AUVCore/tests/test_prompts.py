"""Boxes and key slices from real label maps, checked against a brute-force computation."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from auvcore.prompts import key_slices, slice_boxes


def test_boxes_match_brute_force_on_the_real_ct_labels(sample_cohort):
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_cohort / "example_seg.nii.gz"))).astype(np.int32)
    class_ids = [int(v) for v in np.unique(labels) if v]
    prompts = slice_boxes(labels, class_ids)
    for i, class_id in enumerate(class_ids):
        for d in range(labels.shape[0]):
            rows, cols = np.nonzero(labels[d] == class_id)
            assert prompts.present[i, d] == bool(rows.size)
            assert prompts.areas[i, d] == rows.size
            if rows.size:
                assert prompts.boxes[i, d].tolist() == [cols.min(), rows.min(), cols.max(), rows.max()]
            else:
                assert np.isnan(prompts.boxes[i, d]).all()


def test_key_slice_is_the_largest_area_and_absent_class_is_minus_one():
    labels = np.zeros((4, 10, 10), dtype=np.int32)
    labels[0, :2, :2] = 3
    labels[2, :5, :5] = 3
    labels[3, :3, :3] = 3
    assert key_slices(labels, [3, 9]).tolist() == [2, -1]
