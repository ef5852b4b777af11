"""DUO data pipeline on the real sample cohort: plan, preprocessing, patches, exclusions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from auvcore.curation import ExclusionList, save_exclusions
from auvcore.datasets import discover_cases
from auvcore.errors import InputError
from auvcore.imaging import load_case
from auvcore.duo.data import PatchDataset, PatchKey, load_training_cases, normalise, one_hot_channels, prepare_case
from auvcore.duo.plan import Plan, make_plan
from auvcore.duo.trainer import TrainConfig, select_cases


pytestmark = pytest.mark.usefixtures("one_thread")

PATCH = (32, 32, 32)


@pytest.fixture(scope="module")
def cohort(sample_cohort: Path) -> tuple[list, list]:
    specs = discover_cases(sample_cohort / "manifest.csv")
    return specs, [load_case(s.image, s.label) for s in specs]


def test_plan_unites_ct_and_mr_classes_by_name(cohort: tuple[list, list]) -> None:
    specs, cases = cohort
    plan = make_plan(specs, cases, patch=PATCH)
    ids = dict(zip(plan.classes, plan.label_ids))
    assert ids["liver"] == 5 and ids["spleen"] == 1  # same id in both label files
    assert ids["lung_upper_lobe_left"] == 10  # CT keeps its own ids (first case)
    assert ids["lung_right"] > 117 and ids["vertebrae"] > 117  # MR-only classes whose ids are taken
    assert len(set(plan.label_ids)) == len(plan.label_ids)
    assert plan.spacing == (3.0, 3.0, 3.0)
    assert plan.ct is not None and plan.ct.low < -500 < 0 < plan.ct.high
    assert Plan.from_dict(plan.to_dict()) == plan


def test_default_patch_follows_median_shape(cohort: tuple[list, list]) -> None:
    specs, cases = cohort
    assert make_plan(specs, cases).patch == (32, 112, 128)


def test_unknown_class_is_a_clear_error(cohort: tuple[list, list]) -> None:
    specs, cases = cohort
    with pytest.raises(InputError, match="no_such_organ"):
        make_plan(specs, cases, classes=["liver", "no_such_organ"])


def test_ct_is_clipped_and_z_scored_mr_is_z_scored(cohort: tuple[list, list]) -> None:
    specs, cases = cohort
    plan = make_plan(specs, cases, patch=PATCH)
    ct = normalise(cases[0], plan)
    foreground = np.clip(cases[0].image[cases[0].labels > 0], plan.ct.low, plan.ct.high)
    assert abs(float(((foreground - plan.ct.mean) / plan.ct.std).mean())) < 0.2
    assert ct.max() <= (plan.ct.high - plan.ct.mean) / plan.ct.std + 1e-5
    mr = normalise(cases[3], plan)
    assert abs(float(mr.mean())) < 1e-4 and abs(float(mr.std()) - 1) < 1e-3


def test_resampling_to_plan_spacing_and_channel_labels(cohort: tuple[list, list]) -> None:
    specs, cases = cohort
    plan = replace(make_plan(specs, cases, classes=["liver", "spleen"], patch=PATCH), spacing=(4.5, 6.0, 6.0))
    item = prepare_case(cases[0], specs[0], plan)
    expected = np.asarray(cases[0].image.shape) * np.asarray(cases[0].spacing) / np.asarray(plan.spacing)  # 20, 50.5, 61
    assert np.all(np.abs(np.asarray(item["image"].shape[1:]) - expected) <= 1)
    assert set(torch.unique(item["label"]).tolist()) == {0.0, 1.0, 2.0}


def test_patches_are_reproducible_and_oversample_foreground(cohort: tuple[list, list]) -> None:
    specs, cases = cohort
    plan = make_plan(specs[:1], cases[:1], classes=["kidney_left"], patch=PATCH)
    dataset = PatchDataset(load_training_cases(specs[:1], plan, cases[:1]), PATCH, seed=7)
    image, label = dataset[PatchKey(2, 5)]
    assert image.shape == label.shape == (1, *PATCH)
    again, _ = dataset[PatchKey(2, 5)]
    other, _ = dataset[PatchKey(3, 5)]
    assert torch.equal(image, again) and not torch.equal(image, other)
    # The kidney fills a small part of the volume; a third of the patches are centred on it.
    kidney_share = float((torch.as_tensor(dataset.cases[0]["label"]) > 0).float().mean())
    with_kidney = np.mean([bool((dataset[PatchKey(0, i)][1] > 0).any()) for i in range(24)])
    assert kidney_share < 0.05 and with_kidney >= 1 / 3


def test_one_hot_drops_background() -> None:
    label = torch.tensor([0, 1, 2, 2]).reshape(1, 1, 1, 2, 2)
    onehot = one_hot_channels(label, 2)
    assert onehot.shape == (1, 2, 1, 2, 2)
    assert onehot.sum().item() == 3


def test_exclusions_filter_training_cases(sample_cohort: Path, tmp_path: Path) -> None:
    exclusions = ExclusionList()
    exclusions.exclude("ct_fast_model", 0.97, note="worse labeling")
    exclusions.exclude("not_in_this_dataset", 0.5)
    path = tmp_path / "exclusions.json"
    save_exclusions(path, exclusions)
    config = TrainConfig(dataset=str(sample_cohort / "manifest.csv"), out=str(tmp_path / "run"), exclusions=str(path))
    train, val, excluded, _ = select_cases(config)
    assert excluded == {"ct_fast_model"}
    assert "ct_fast_model" not in {s.case_id for s in train + val}
    assert len(train) + len(val) == 3 and len(val) == 1


def test_missing_or_total_exclusions_are_errors(sample_cohort: Path, tmp_path: Path) -> None:
    manifest = str(sample_cohort / "manifest.csv")
    with pytest.raises(InputError, match="does not exist"):
        select_cases(TrainConfig(dataset=manifest, out=str(tmp_path), exclusions=str(tmp_path / "none.json")))
    everything = ExclusionList()
    for case in ("ct_full_model", "ct_fast_model", "ct_roi_subset", "mr"):
        everything.exclude(case, None)
    save_exclusions(tmp_path / "all.json", everything)
    with pytest.raises(InputError, match="excludes every case"):
        select_cases(TrainConfig(dataset=manifest, out=str(tmp_path), exclusions=str(tmp_path / "all.json")))


def test_nnunet_raw_dataset_is_read_with_its_class_names(sample_cohort: Path, tmp_path: Path) -> None:
    raw = tmp_path / "Dataset001_Sample"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    for case, label in (("ct001", "example_seg.nii.gz"), ("ct002", "example_seg_fast.nii.gz")):
        (raw / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(sample_cohort / "example_ct_sm.nii.gz")
        (raw / "labelsTr" / f"{case}.nii.gz").symlink_to(sample_cohort / label)
    (raw / "dataset.json").write_text('{"channel_names": {"0": "CT"}, "labels": {"background": 0, "spleen": 1, "liver": 5},'
                                      ' "numTraining": 2, "file_ending": ".nii.gz"}')
    train, val, _, _ = select_cases(TrainConfig(dataset=str(raw), out=str(tmp_path / "run")))
    assert sorted(s.case_id for s in train + val) == ["ct001", "ct002"]
    plan = make_plan(train, [load_case(s.image, s.label) for s in train], classes=["liver", "spleen"], patch=PATCH)
    assert dict(zip(plan.classes, plan.label_ids)) == {"spleen": 1, "liver": 5}


def test_a_case_smaller_than_the_patch_gets_its_foreground_patches(tmp_path: Path) -> None:
    """The foreground indices are taken after padding: taken before, they pointed at other slices of the padded case."""
    import SimpleITK as sitk

    from auvcore.datasets import CaseSpec

    image = np.random.default_rng(0).normal(size=(8, 20, 20)).astype(np.float32)
    label = np.zeros((8, 20, 20), np.uint8)
    label[7, 5:15, 5:15] = 1  # foreground in the last of 8 slices only
    for array, name in ((image, "image.nii.gz"), (label, "label.nii.gz")):
        volume = sitk.GetImageFromArray(array)
        volume.SetSpacing((2.0, 2.0, 2.0))
        sitk.WriteImage(volume, str(tmp_path / name))
    spec = CaseSpec("small", tmp_path / "image.nii.gz", tmp_path / "label.nii.gz", {1: "blob"})
    case = load_case(spec.image, spec.label)
    patch = (1, 32, 32)
    plan = make_plan([spec], [case], classes=["blob"], patch=patch)
    dataset = PatchDataset(load_training_cases([spec], plan, [case]), patch, seed=3)
    assert tuple(dataset.cases[0]["label"].shape[1:]) == (8, 32, 32)
    with_blob = np.mean([bool((dataset[PatchKey(0, i)][1] > 0).any()) for i in range(90)])
    # A third of the patches is centred on the blob; a background-centred one meets it 1 time in 8.
    assert with_blob >= 0.3
