"""Shared fixtures: the real sample cohort and small crops of it for fast real-model tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from auvcore.sample_data import fetch_sample_cohort

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "Testing" / "data" / "sample_cohort"

#: TotalSegmentator "total" ids kept in the small CT crop: liver, spleen, kidney_right, stomach.
CT_CLASSES = {"liver": 5, "spleen": 1, "kidney_right": 2, "stomach": 6}


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported models go to a folder of this test session, not the user's cache."""
    folder = tmp_path_factory.mktemp("auv_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUV_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def sample_cohort() -> Path:
    """The real sample cohort's folder (fetched once, checked by SHA-256)."""
    return fetch_sample_cohort(SAMPLE_DIR).parent


def _crop(image_path: Path, out_path: Path, slices: slice, keep: dict[str, int] | None = None) -> None:
    image = sitk.ReadImage(str(image_path))
    cropped = image[:, :, slices]
    if keep is not None:
        values = sitk.GetArrayFromImage(cropped)
        kept = np.where(np.isin(values, list(keep.values())), values, 0).astype(values.dtype)
        relabelled = sitk.GetImageFromArray(kept)
        relabelled.CopyInformation(cropped)
        cropped = relabelled
    sitk.WriteImage(cropped, str(out_path))


@pytest.fixture(scope="session")
def small_cohort(sample_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-case manifest cut from the real volumes: 6 CT slices with 4 organs as
    labelled by TotalSegmentator's full and fast models, and 5 MR slices."""
    folder = tmp_path_factory.mktemp("small_cohort")
    ct_slices = slice(12, 18)
    _crop(sample_cohort / "example_ct_sm.nii.gz", folder / "ct.nii.gz", ct_slices)
    _crop(sample_cohort / "example_seg.nii.gz", folder / "ct_full.nii.gz", ct_slices, CT_CLASSES)
    _crop(sample_cohort / "example_seg_fast.nii.gz", folder / "ct_fast.nii.gz", ct_slices, CT_CLASSES)
    mr_slices = slice(8, 13)
    _crop(sample_cohort / "example_mr_sm.nii.gz", folder / "mr.nii.gz", mr_slices)
    _crop(sample_cohort / "example_seg_mr.nii.gz", folder / "mr_seg.nii.gz", mr_slices, {"liver": 5, "spleen": 1})
    (folder / "labels.json").write_text(json.dumps({"labels": {"background": 0, **CT_CLASSES}}))
    (folder / "manifest.csv").write_text(
        "case_id,image,label,label_names\n"
        "ct_full,ct.nii.gz,ct_full.nii.gz,labels.json\n"
        "ct_fast,ct.nii.gz,ct_fast.nii.gz,labels.json\n"
        "mr,mr.nii.gz,mr_seg.nii.gz,labels.json\n"
    )
    return folder


@pytest.fixture(scope="session")
def scored(small_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``auv score`` of the small cohort in one process (tests copy it before changing it)."""
    from auvcore.cli import main

    out = tmp_path_factory.mktemp("scored")
    assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def scored_all(small_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``auv score --scorers all --runtime torch`` of the small cohort (tests copy it before changing it)."""
    from auvcore.cli import main

    out = tmp_path_factory.mktemp("scored_all")
    assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress",
                 "--scorers", "all", "--runtime", "torch"]) == 0
    return out


@pytest.fixture(scope="session")
def litemedsam():
    """The real embedded LiteMedSAM on the CPU, loaded once."""
    from auvcore.backends import create_backend

    return create_backend("litemedsam", device="cpu")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small tensors run fastest on one thread, and the machine may be shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LESION_DIR = REPO_ROOT / "Testing" / "data" / "lesion_cohort"
#: The smoke audit's cases: the three smallest slabs of the pyradiomics scans (MR brain, MR breast, CT lung).
SMOKE_LESIONS = ("pyradiomics_brain2_z06", "pyradiomics_breast1_z06", "pyradiomics_lung1_z30")


@pytest.fixture(scope="session")
def lesion_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of three real lesion cases (the pyradiomics sdist's, fetched once and checked by SHA-256)."""
    from auvcore.sample_lesions import fetch_lesion_cohort

    manifest = fetch_lesion_cohort(tmp_path_factory.mktemp("lesions"), packages=("pyradiomics",), downloads=LESION_DIR / "downloads")
    lines = manifest.read_text().splitlines()
    smoke = manifest.with_name("smoke.csv")
    smoke.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.split(",")[0] in SMOKE_LESIONS)]) + "\n")
    return smoke


@pytest.fixture(scope="session")
def lesion_audit(lesion_smoke: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CI smoke of the lesion audit: ``auv audit --lesion-sizes`` on the three cases, two of them corrupted."""
    from auvcore.cli import main

    out = tmp_path_factory.mktemp("lesion_audit")
    assert main(["audit", str(lesion_smoke), "--out", str(out), "--lesion-sizes", "--fraction", "0.67", "--seed", "3",
                 "--device", "cpu", "--no-progress"]) == 0
    return out
