"""Cohort layouts: nnU-Net raw, Decathlon, images/labels folders, flat folders, manifests."""

from __future__ import annotations

import json
from pathlib import Path

from auvcore.datasets import discover_cases, read_label_names


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_nnunet_raw_dataset_with_names(tmp_path):
    root = tmp_path / "Dataset002_Heart"
    for case in ("la_003", "la_004"):
        _touch(root / "imagesTr" / f"{case}_0000.nii.gz")
        _touch(root / "imagesTr" / f"{case}_0001.nii.gz")  # second channel is ignored
        _touch(root / "labelsTr" / f"{case}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "left atrium": 1}, "file_ending": ".nii.gz"}))
    specs = discover_cases(root)
    assert [s.case_id for s in specs] == ["la_003", "la_004"]
    assert specs[0].image.name == "la_003_0000.nii.gz" and specs[0].label.name == "la_003.nii.gz"
    assert specs[0].name_of(1) == "left atrium" and specs[0].name_of(7) == "label_7"


def test_decathlon_labels_map(tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"labels": {"0": "background", "1": "liver", "2": "cancer"}}))
    assert read_label_names(path) == {1: "liver", 2: "cancer"}


def test_images_labels_folders_and_flat_folder(tmp_path):
    root = tmp_path / "pairs"
    _touch(root / "images" / "p1.nrrd")
    _touch(root / "labels" / "p1.nrrd")
    assert [(s.case_id, s.label.name) for s in discover_cases(root)] == [("p1", "p1.nrrd")]
    flat = tmp_path / "flat"
    _touch(flat / "k1.mha")
    _touch(flat / "k1_seg.mha")
    _touch(flat / "k2.nii.gz")
    _touch(flat / "k2_label.nii.gz")
    assert [(s.case_id, s.image.name, s.label.name) for s in discover_cases(flat)] == [
        ("k1", "k1.mha", "k1_seg.mha"), ("k2", "k2.nii.gz", "k2_label.nii.gz")]
    images_only = tmp_path / "unlabelled"
    _touch(images_only / "u.nii.gz")
    assert discover_cases(images_only)[0].label is None


def test_real_sample_manifest(sample_cohort):
    specs = discover_cases(sample_cohort / "manifest.csv")
    assert [s.case_id for s in specs] == ["ct_full_model", "ct_fast_model", "ct_roi_subset", "mr"]
    assert specs[0].image == specs[1].image and specs[0].label != specs[1].label
    assert specs[0].name_of(5) == "liver" and specs[3].name_of(1) == "spleen"
    assert all(s.image.exists() and s.label.exists() for s in specs)


def test_a_dataset_behind_a_symbolic_link_keeps_the_paths_the_user_gave(sample_cohort, tmp_path):
    linked = tmp_path / "my_dataset"
    linked.symlink_to(sample_cohort, target_is_directory=True)
    specs = discover_cases(linked / "manifest.csv")
    assert all(str(spec.image).startswith(str(linked)) and str(spec.label).startswith(str(linked)) for spec in specs)
    assert specs[0].label_names == linked / "labels_total.json"
