"""One ``--device`` rule (auvcore.devices) for scoring, training and prediction."""

from __future__ import annotations

import pytest
import torch

from auvcore import backends, devices
from auvcore.cli import main
from auvcore.duo import distributed, predict
from auvcore.errors import InputError

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")


def test_scoring_training_and_prediction_share_the_rule():
    assert backends.resolve_device is devices.resolve_device
    assert distributed.resolve_device is devices.resolve_device
    assert predict.resolve_device is devices.resolve_device


def test_auto_takes_the_gpu_when_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.resolve_device("auto").type == expected
    assert devices.resolve_device().type == expected


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_cpu_is_taken_as_given(device):
    assert devices.resolve_device(device) == torch.device("cpu")


@pytest.mark.parametrize("device", ["tpu", "mps", "gpu", ""])
def test_other_devices_are_refused_naming_the_option(device):
    with pytest.raises(InputError, match=r"^--device: must be auto, cpu, cuda or cuda:N"):
        devices.resolve_device(device)


@without_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(device):
    with pytest.raises(InputError, match=rf"^--device: {device} was asked for, but PyTorch sees no CUDA GPU"):
        devices.resolve_device(device)


@needs_cuda
def test_cuda_and_a_numbered_gpu_that_exists():
    assert devices.resolve_device("cuda") == torch.device("cuda")
    last = torch.cuda.device_count() - 1
    assert devices.resolve_device(f"cuda:{last}") == torch.device("cuda", last)
    torch.ones(1, device=devices.resolve_device(f"cuda:{last}"))  # usable, not just parsed


@needs_cuda
def test_a_gpu_number_past_the_last_is_a_clear_error():
    count = torch.cuda.device_count()
    with pytest.raises(InputError, match=rf"^--device: cuda:{count} was asked for, but PyTorch sees {count} CUDA GPU"):
        devices.resolve_device(f"cuda:{count}")


def test_train_and_predict_end_with_a_one_line_error_for_a_bad_device(tmp_path, capsys):
    """The error comes before any data is read: the dataset and model need not exist."""
    assert main(["train", str(tmp_path / "dataset"), "--out", str(tmp_path / "run"), "--device", "tpu"]) == 2
    assert capsys.readouterr().err == "auv: error: --device: must be auto, cpu, cuda or cuda:N, got 'tpu'\n"
    assert main(["predict", str(tmp_path / "model.pt"), str(tmp_path / "image.nii.gz"), "--out", str(tmp_path / "seg.nii.gz"),
                 "--device", "cuda:99"]) == 2
    assert capsys.readouterr().err.startswith("auv: error: --device: cuda:99 was asked for, but PyTorch sees ")
