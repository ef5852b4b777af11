"""TrainConfig holds the one set of training defaults; ``auv train`` and the Slicer module read them without torch."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys

import pytest

from auvcore.cli import build_parser, training_engine
from auvcore.commands.nnunet import export_options
from auvcore.commands.train import train_config
from auvcore.duo.config import TrainConfig
from auvcore.nnunet.export import export_dataset


def test_auv_train_without_options_gives_the_config_defaults():
    args = build_parser().parse_args(["train", "Task01", "--out", "run"])
    assert train_config(args) == TrainConfig(dataset="Task01", out="run")


def test_every_option_reaches_the_config():
    args = build_parser().parse_args(["train", "Task01", "--out", "run", "--backbone", "swinunetr", "--config", "2d", "--no-duo", "--duo-form", "hard_dice", "--duo-warmup", "0.25", "--epochs", "7",
                                      "--steps-per-epoch", "3", "--batch", "4", "--patch", "32,64,64", "--in-plane-spacing", "4,5", "--lr", "0.1",
                                      "--device", "cpu", "--seed", "1", "--val-every", "2", "--val-fraction", "0.5",
                                      "--exclusions", "e.json", "--classes", "liver, spleen", "--base-filters", "8",
                                      "--workers", "2", "--no-amp", "--log-every", "1", "--resume", "--original-labels"])
    expected = TrainConfig(dataset="Task01", out="run", backbone="swinunetr", config="2d", duo=False, duo_form="hard_dice", duo_warmup=0.25, epochs=7, steps_per_epoch=3, batch=4,
                           patch=(32, 64, 64), in_plane_spacing=(4.0, 5.0), lr=0.1, device="cpu", seed=1, val_every=2, val_fraction=0.5, exclusions="e.json",
                           classes=("liver", "spleen"), base_filters=8, workers=2, amp=False, log_every=1, resume=True,
                           original_labels=True)
    assert train_config(args) == expected
    defaults = TrainConfig(dataset="Task01", out="run")
    unchanged = [f.name for f in dataclasses.fields(TrainConfig) if getattr(expected, f.name) == getattr(defaults, f.name)]
    assert unchanged == ["dataset", "out"]  # so each option above is seen to arrive


def test_the_defaults_load_without_torch():
    """In a fresh interpreter, as the Slicer module reads them."""
    code = ("import sys, json; import auvcore; before = 'torch' in sys.modules; "
            "from auvcore.duo.config import TrainConfig; "
            "print(json.dumps([before, 'torch' in sys.modules, TrainConfig.epochs]))")
    before, after, epochs = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    if before:
        pytest.skip("`import auvcore` itself still imports torch (its lazy __init__ is issue 10's)")
    assert (after, epochs) == (False, TrainConfig.epochs)


def test_engine_bundled_leaves_the_config_as_it_is():
    args = build_parser().parse_args(["train", "Task01", "--out", "run", "--engine", "bundled", "--epochs", "7"])
    assert training_engine(["train", "Task01", "--engine", "bundled"])[0] == "bundled"
    assert train_config(args) == TrainConfig(dataset="Task01", out="run", epochs=7)


@pytest.mark.parametrize("engine", [["--engine", "nnunet"], ["--engine=nnunet"]])
def test_engine_nnunet_hands_every_other_argument_to_nnunetv2_train_unchanged(engine):
    """nnUNetv2_train 2.8.1's own options, in order, whatever their form (none is read by ``auv train``)."""
    nnunet = ["501", "3d_fullres", "0", "-tr", "nnUNetTrainerDUO_Paper", "-p", "nnUNetResEncUNetMPlans", "-pretrained_weights",
              "w.pth", "-num_gpus", "2", "--npz", "--c", "--val", "--val_best", "--disable_checkpointing", "-device", "cuda", "-h"]
    assert training_engine(["train", *nnunet[:3], *engine, *nnunet[3:]]) == ("nnunet", nnunet)


def test_every_nnunet_export_option_reaches_the_export():
    args = build_parser().parse_args(["nnunet", "export", "results", "--dataset-id", "501", "--name", "Liver", "--raw", "raw",
                                      "--exclusions", "e.json", "--classes", "liver, spleen", "--original-labels"])
    assert export_options(args) == {"results": "results", "dataset_id": 501, "name": "Liver", "raw": "raw",
                                    "exclusions": "e.json", "original_labels": True, "classes": ("liver", "spleen")}
    defaults = export_options(build_parser().parse_args(["nnunet", "export", "results", "--dataset-id", "501"]))
    assert [k for k, v in defaults.items() if v == export_options(args)[k]] == ["results", "dataset_id"]
    assert set(defaults) == set(inspect.signature(export_dataset).parameters)  # every argument of the export has an option
