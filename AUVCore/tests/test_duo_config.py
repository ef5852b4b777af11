"""TrainConfig holds the one set of training defaults; ``auv train`` and the Slicer module read them without torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from auvcore.cli import build_parser
from auvcore.commands.train import train_config
from auvcore.duo.config import TrainConfig


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
