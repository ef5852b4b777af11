"""``auv train --config 2d``: axial slices through the same pipeline, and ``auv predict`` slice by slice."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from auvcore.cli import main
from auvcore.duo.checkpoint import LATEST, MODEL, load_checkpoint
from auvcore.duo.data import training_transform
from auvcore.duo.plan import default_batch_2d

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_2D = ["--config", "2d", "--base-filters", "4", "--classes", "liver,spleen", "--epochs", "1", "--steps-per-epoch", "2",
           "--val-every", "1", "--device", "cpu", "--log-every", "1", "--seed", "5"]


@pytest.fixture(scope="module")
def run_2d(sample_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("train_2d") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["train", str(sample_cohort / "manifest.csv"), "--out", str(out), *TINY_2D]) == 0
    return out, stdout.getvalue()


def test_the_plan_is_two_dimensional_and_picks_its_batch(run_2d: tuple[Path, str]):
    out, stdout = run_2d
    plan = json.loads((out / "plan.json").read_text())
    assert plan["config"] == "2d" and plan["patch"][0] == 1 and plan["spacing"][0] == 0.0  # slices keep their spacing
    assert plan["batch"] == default_batch_2d(plan["patch"]) >= 2
    assert f"2d patch {tuple(plan['patch'])} x {plan['batch']}" in stdout
    assert "PROGRESS epoch=1/1 step=2/2" in stdout and "status=done" in stdout


def test_the_network_never_convolves_across_slices(run_2d: tuple[Path, str]):
    state = load_checkpoint(run_2d[0] / MODEL, map_location="cpu")
    assert all(kernel[0] == 1 for kernel in state["backbone"]["kernel_size"])
    assert all(stride[0] == 1 for stride in state["backbone"]["strides"])


def test_predict_segments_slice_by_slice_on_the_input_grid(run_2d: tuple[Path, str], sample_cohort: Path, tmp_path: Path):
    image = sample_cohort / "example_mr_sm.nii.gz"
    out = tmp_path / "mr_seg.nii.gz"
    assert main(["predict", str(run_2d[0]), str(image), "--out", str(out), "--device", "cpu"]) == 0
    source, predicted = sitk.ReadImage(str(image)), sitk.ReadImage(str(out))
    assert predicted.GetSize() == source.GetSize() and predicted.GetSpacing() == pytest.approx(source.GetSpacing())
    assert predicted.GetOrigin() == pytest.approx(source.GetOrigin()) and predicted.GetDirection() == pytest.approx(source.GetDirection())
    assert set(np.unique(sitk.GetArrayFromImage(predicted))) <= {0, 1, 5}  # spleen and liver keep their label ids


def test_a_one_slice_patch_is_augmented_in_its_plane():
    transform = training_transform((1, 32, 32))
    image = np.zeros((1, 3, 40, 40), np.float32)
    image[:, 1] = np.arange(40)[None, :, None]  # the middle slice alone holds a ramp
    label = np.zeros_like(image)
    label[:, 1, 10:30, 10:30] = 1
    item = {"image": image, "label": label, "label_fg": np.flatnonzero(label), "label_bg": np.flatnonzero(label == 0)}
    for seed in range(20):
        transform.set_random_state(seed=seed)
        sample = transform(dict(item))
        sample = sample[0] if isinstance(sample, list) else sample
        patch = np.asarray(sample["image"])
        assert patch.shape == (1, 1, 32, 32)
        if np.asarray(sample["label"]).any():  # a slice from the middle: in-plane transforms keep its content
            assert patch.max() > 0


def test_a_2d_patch_must_be_one_slice_deep_and_swinunetr_is_refused(sample_cohort: Path, tmp_path: Path, capsys):
    manifest = str(sample_cohort / "manifest.csv")
    assert main(["train", manifest, "--out", str(tmp_path / "a"), "--config", "2d", "--patch", "16,64,64", "--device", "cpu"]) == 2
    assert "a 2d patch is one slice deep" in capsys.readouterr().err
    assert main(["train", manifest, "--out", str(tmp_path / "b"), "--config", "2d", "--backbone", "swinunetr", "--device", "cpu"]) == 2
    assert "the 2d configuration trains dynunet only" in capsys.readouterr().err


def test_the_s_weights_alone_train_without_a_noise_head_and_predict(sample_cohort: Path, tmp_path: Path):
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(sample_cohort / "manifest.csv"), "--out", str(out), *TINY_2D, "--duo-form", "weights"]) == 0
    state = load_checkpoint(out / MODEL, map_location="cpu")
    assert state["duo"] is False and not any(key.startswith("noise_head") for key in state["model"])
    assert load_checkpoint(out / LATEST, map_location="cpu")["config"]["duo_form"] == "weights"
    assert main(["predict", str(out), str(sample_cohort / "example_mr_sm.nii.gz"), "--out", str(tmp_path / "seg.nii.gz"), "--device", "cpu"]) == 0


def test_a_coarser_in_plane_spacing_trains_on_smaller_slices_and_predicts_on_the_input_grid(
        run_2d: tuple[Path, str], sample_cohort: Path, tmp_path: Path):
    """--in-plane-spacing 6 on the 3 mm sample: the plan's slices are about half as wide, the prediction on the image's grid."""
    out = tmp_path / "run"
    assert main(["train", str(sample_cohort / "manifest.csv"), "--out", str(out), *TINY_2D, "--in-plane-spacing", "6"]) == 0
    coarse, native = (json.loads((run / "plan.json").read_text()) for run in (out, run_2d[0]))
    assert coarse["spacing"] == [0.0, 6.0, 6.0] and native["spacing"][1:] == [3.0, 3.0]
    assert all(c <= n // 2 + 16 for c, n in zip(coarse["patch"][1:], native["patch"][1:]))
    image = sample_cohort / "example_ct_sm.nii.gz"
    predicted = tmp_path / "seg.nii.gz"
    assert main(["predict", str(out), str(image), "--out", str(predicted), "--device", "cpu"]) == 0
    assert sitk.ReadImage(str(predicted)).GetSize() == sitk.ReadImage(str(image)).GetSize()
