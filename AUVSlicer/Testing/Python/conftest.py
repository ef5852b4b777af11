"""Fixtures of the AUVSlicerLib tests: real MRML with the ``slicer-core`` wheel (see ``headless.py``)
and the real sample cohort, scored once with the real ``auv score``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODULE_FOLDER = Path(__file__).resolve().parents[2]
REPOSITORY = MODULE_FOLDER.parent
sys.path.insert(0, str(MODULE_FOLDER))

from AUVSlicerLib.job_commands import ScoreJob, score_command
from headless import HeadlessScene


@pytest.fixture
def scene():
    """A fresh MRML scene set up as in Slicer, also set as ``slicer.mrmlScene``."""
    headless = HeadlessScene()
    yield headless.scene
    headless.close()


@pytest.fixture(scope="session")
def sample_manifest() -> Path:
    from auvcore.sample_data import fetch_sample_cohort

    return fetch_sample_cohort(REPOSITORY / "Testing" / "data" / "sample_cohort")


def _score(settings: ScoreJob) -> None:
    result = subprocess.run(score_command(sys.executable, settings), capture_output=True, text=True, check=False,
                            timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"auv score failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


#: The four largest abdominal organs of the sample CT (label values of labels_total.json).
ORGANS = {1: "spleen", 2: "kidney_right", 5: "liver", 6: "stomach"}


#: The annotation error of the ``ct_shifted`` case: the liver moved this many slices up.
LIVER_SHIFT_SLICES = 3


def _organ_subset(source: Path, target: Path, shift_liver: int = 0) -> None:
    """The sample label map restricted to :data:`ORGANS`: real annotations, a tenth of the classes to score;
    ``shift_liver`` moves the liver by that many slices, as a mis-registered annotation would be."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(source))
    values = sitk.GetArrayFromImage(image)
    organs = np.where(np.isin(values, list(ORGANS)), values, 0).astype(values.dtype)
    if shift_liver:
        liver = np.roll(organs == 5, shift_liver, axis=0)
        liver[:shift_liver] = False
        organs[organs == 5] = 0
        organs[liver] = 5
    subset = sitk.GetImageFromArray(organs)
    subset.CopyInformation(image)
    sitk.WriteImage(subset, str(target))


@pytest.fixture(scope="session")
def scored_cohort(sample_manifest: Path, tmp_path_factory) -> Path:
    """A copy of the ``auv score`` output (real LiteMedSAM scores) of the sample CT's organs as labelled
    by TotalSegmentator's full model (``ct_full``), its fast model (``ct_fast``) and the full model's
    labels with the liver shifted by :data:`LIVER_SHIFT_SLICES` slices (``ct_shifted``, an annotation
    error), with two of the extra scorers (``agreement``, which has per-slice values, and ``consistency``).

    The scores are made in ``Testing/data/auvslicer_scores``, where the core's per-case cache
    makes every later session instant; tests get a copy they may change.
    """
    folder = sample_manifest.parent
    stable = folder.parent / "auvslicer_scores"
    stable.mkdir(exist_ok=True)
    rows = ["case_id,image,label,label_names"]
    for case_id, label, shift in (("ct_full", "example_seg.nii.gz", 0), ("ct_fast", "example_seg_fast.nii.gz", 0),
                                  ("ct_shifted", "example_seg.nii.gz", LIVER_SHIFT_SLICES)):
        subset = stable / f"{case_id}_organs.nii.gz"
        if not subset.exists():
            _organ_subset(folder / label, subset, shift)
        rows.append(f"{case_id},{folder / 'example_ct_sm.nii.gz'},{subset},{folder / 'labels_total.json'}")
    (stable / "manifest.csv").write_text("\n".join(rows) + "\n")
    _score(ScoreJob(dataset=str(stable / "manifest.csv"), output=str(stable / "scores"), device="cpu",
                         scorers="agreement,consistency"))
    copy = tmp_path_factory.mktemp("scored") / "scores"
    shutil.copytree(stable / "scores", copy)
    return copy


@pytest.fixture(scope="session")
def probe_cohort(scored_cohort: Path, sample_manifest: Path, tmp_path_factory) -> Path:
    """A copy of the ``auv score`` output of ``ct_shifted`` alone (the shifted liver of :func:`scored_cohort`) with the
    label-independent probe (``probe_agreement``): its feature cache holds each organ's disagreement map and
    proposed correction (:mod:`auvcore.results.proposals`). One case, so that CI scores only one more; the cases of
    :func:`scored_cohort` are the ones scored without the probe.

    Scored in ``Testing/data/auvslicer_scores/probe_scores`` (instant in later sessions, as there); tests get a copy.
    """
    stable = sample_manifest.parent.parent / "auvslicer_scores"  # where scored_cohort wrote the organ label maps
    manifest = stable / "probe_manifest.csv"
    lines = (stable / "manifest.csv").read_text().splitlines()
    manifest.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.startswith("ct_shifted,"))]) + "\n")
    _score(ScoreJob(dataset=str(manifest), output=str(stable / "probe_scores"), device="cpu",
                    scorers="agreement,probe_agreement"))
    copy = tmp_path_factory.mktemp("probe") / "scores"
    shutil.copytree(stable / "probe_scores", copy)
    return copy
