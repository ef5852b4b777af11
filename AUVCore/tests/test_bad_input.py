"""SPEC §8: every bad input gets a clear error naming the file and the problem."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from auvcore.backends.litemedsam import load_litemedsam
from auvcore.cohort import CaseScorer, ScoreSettings
from auvcore.datasets import CaseSpec, discover_cases
from auvcore.errors import InputError
from auvcore.imaging import load_case


def _write(array: np.ndarray, path, spacing=(3.0, 3.0, 3.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[: image.GetDimension()])
    image.SetOrigin(origin[: image.GetDimension()])
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def volume(tmp_path):
    return _write(np.random.default_rng(0).normal(size=(4, 16, 16)).astype(np.float32), tmp_path / "img.nii.gz")


def _labels(tmp_path, name="lab.nii.gz", **kwargs):
    labels = np.zeros((4, 16, 16), dtype=np.uint8)
    labels[1:3, 4:9, 4:9] = 2
    return _write(labels, tmp_path / name, **kwargs)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.nii.gz: does not exist"):
        load_case(tmp_path / "nope.nii.gz")


def test_truncated_file(tmp_path, sample_cohort):
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes((sample_cohort / "example_mr_sm.nii.gz").read_bytes()[:5000])
    with pytest.raises(InputError, match=r"truncated.nii.gz: is truncated or corrupt"):
        load_case(truncated)


def test_truncated_uncompressed_file(tmp_path, volume):
    whole = tmp_path / "whole.nii"
    sitk.WriteImage(sitk.ReadImage(str(volume)), str(whole))
    cut = tmp_path / "cut.nii"
    cut.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"cut.nii: is truncated: 2000 bytes stored, at least 4448 expected"):
        load_case(cut)


def test_unreadable_file(tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="junk.nii.gz: cannot be read"):
        load_case(junk)


def test_2d_and_4d_images(tmp_path):
    flat = _write(np.zeros((16, 16), dtype=np.float32), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="flat.nii.gz: is a 2D image"):
        load_case(flat)
    series = tmp_path / "series.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 8, 8), dtype=np.float32), isVector=False), str(series))
    with pytest.raises(InputError, match="series.nii.gz: is a 4D image"):
        load_case(series)


def test_nan_and_inf_voxels(tmp_path):
    array = np.zeros((4, 8, 8), dtype=np.float32)
    array[0, 0, 0] = np.nan
    array[1, 1, 1] = np.inf
    bad = _write(array, tmp_path / "nan.mha")  # ITK's NIfTI I/O turns NaN into 0; MetaImage keeps it
    with pytest.raises(InputError, match="nan.mha: holds 2 NaN or infinite voxels"):
        load_case(bad)


def test_geometry_mismatch(tmp_path, volume):
    for name, kwargs, problem in (
        ("spacing.nii.gz", {"spacing": (1.0, 3.0, 3.0)}, "spacing"),
        ("origin.nii.gz", {"origin": (5.0, 0.0, 0.0)}, "origin"),
    ):
        with pytest.raises(InputError, match=f"{name}: {problem}"):
            load_case(volume, _labels(tmp_path, name, **kwargs))
    small = _write(np.zeros((3, 16, 16), dtype=np.uint8), tmp_path / "size.nii.gz")
    with pytest.raises(InputError, match="size.nii.gz: has size"):
        load_case(volume, small)


def test_labels_that_are_not_a_label_map(tmp_path, volume):
    fractional = _write(np.full((4, 16, 16), 0.5, dtype=np.float32), tmp_path / "frac.nii.gz")
    with pytest.raises(InputError, match="frac.nii.gz: is not a label map: it holds non-integer"):
        load_case(volume, fractional)
    negative = _write(np.full((4, 16, 16), -1, dtype=np.int16), tmp_path / "neg.nii.gz")
    with pytest.raises(InputError, match="neg.nii.gz: is not a label map: it holds negative"):
        load_case(volume, negative)


def test_empty_label_and_classwise_without_label(tmp_path, volume, litemedsam):
    empty = _write(np.zeros((4, 16, 16), dtype=np.uint8), tmp_path / "empty.nii.gz")
    scorer = CaseScorer(ScoreSettings(device="cpu"), backend_factory=lambda: litemedsam)
    with pytest.raises(InputError, match="empty.nii.gz: holds no labelled voxels"):
        scorer.score(CaseSpec("c", volume, empty), "key")
    with pytest.raises(InputError, match="img.nii.gz: classwise scoring needs a label map"):
        scorer.score(CaseSpec("c", volume, None), "key")


def test_absurd_size_is_refused_before_running(tmp_path, volume, litemedsam):
    scorer = CaseScorer(ScoreSettings(device="cpu", max_feature_gib=0.0001), backend_factory=lambda: litemedsam)
    with pytest.raises(InputError, match=r"img.nii.gz: needs about .* GiB .* more than the limit"):
        scorer.score(CaseSpec("c", volume, _labels(tmp_path)), "key")


def test_wrong_architecture_checkpoint(tmp_path):
    wrong = tmp_path / "resnet.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), wrong)
    with pytest.raises(InputError, match="resnet.pt: is not a LiteMedSAM checkpoint"):
        load_litemedsam(wrong, torch.device("cpu"))
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": object()}, pickled)
    with pytest.raises(InputError, match="pickled.pt: cannot be loaded as a weights-only"):
        load_litemedsam(pickled, torch.device("cpu"))


def test_cohort_with_duplicates_or_missing_pairs(tmp_path, volume):
    nnunet = tmp_path / "Dataset001"
    (nnunet / "imagesTr").mkdir(parents=True)
    (nnunet / "labelsTr").mkdir()
    shutil.copy(volume, nnunet / "imagesTr" / "a_0000.nii.gz")
    shutil.copy(volume, nnunet / "imagesTr" / "b_0000.nii.gz")
    shutil.copy(_labels(tmp_path), nnunet / "labelsTr" / "a.nii.gz")
    shutil.copy(_labels(tmp_path), nnunet / "labelsTr" / "c.nii.gz")
    with pytest.raises(InputError, match=r"Dataset001: has missing pairs \(images without a label: b; labels without an image: c\)"):
        discover_cases(nnunet)
    manifest = tmp_path / "dup.csv"
    manifest.write_text(f"case_id,image,label\nx,{volume},\nx,{volume},\n")
    with pytest.raises(InputError, match="dup.csv: has duplicate case ids: x"):
        discover_cases(manifest)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="foreign.csv: is not a manifest"):
        discover_cases(foreign)


def test_a_cohort_where_every_case_fails_reports_each_and_saves_no_scale(tmp_path, capsys):
    from auvcore.cli import main

    missing = tmp_path / "missing.nii.gz"
    code = main(["score", str(missing), "--label", str(tmp_path / "missing_label.nii.gz"), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    assert f"error: missing: {missing}: does not exist" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "cases" / "missing.json").read_text())
    assert record["status"] == "error" and not (tmp_path / "out" / "reference.json").exists()


def test_bad_label_names_file(tmp_path):
    from auvcore.datasets import read_label_names

    broken = tmp_path / "dataset.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="dataset.json: cannot be read as JSON"):
        read_label_names(broken)
    broken.write_text(json.dumps({"name": "x"}))
    with pytest.raises(InputError, match="dataset.json: has no 'labels' map"):
        read_label_names(broken)


def test_a_results_table_given_as_the_dataset_is_refused_before_any_case_is_scored(scored, tmp_path, capsys):
    from auvcore.cli import main

    assert main(["score", str(scored / "results.csv"), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert f"{scored / 'results.csv'}: is a results table of `auv score`, not a manifest of cases to score" in error
    assert not (tmp_path / "out" / "cases").exists()


def test_explain_names_a_missing_path(tmp_path, capsys):
    from auvcore.cli import main

    missing = tmp_path / "no_such_case.nii.gz"
    assert main(["explain", str(missing), "--class", "liver", "--out", str(tmp_path / "page")]) == 2
    error = capsys.readouterr().err
    assert f"{missing}: does not exist" in error and "needs its label map" not in error


@pytest.mark.parametrize("given", ["results.csv", "cases/ct_full.json"])
def test_a_reference_that_is_another_file_of_the_folder_says_what_to_give(scored, small_cohort, tmp_path, capsys, given):
    from auvcore.cli import main

    code = main(["score", str(small_cohort / "ct.nii.gz"), "--label", str(small_cohort / "ct_full.nii.gz"), "--out", str(tmp_path),
                 "--reference", str(scored / given)])
    assert code == 2
    error = capsys.readouterr().err
    assert f"{scored / given}: is " in error and "give the results folder of `auv score` or its reference.json" in error
    assert "Expecting value" not in error
