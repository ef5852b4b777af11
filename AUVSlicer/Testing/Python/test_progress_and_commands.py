"""PROGRESS line parsing and the command lines built from the module's settings."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from auvcore.results import CaseProgress, EpochProgress, parse_progress_line
from AUVSlicerLib.job_commands import (
    CLI_ENTRY,
    NnUNetTrainJob,
    ScoreJob,
    TrainJob,
    nnunet_train_command,
    score_command,
    train_command,
)


def test_case_lines_of_auv_score_are_parsed():
    progress = parse_progress_line("PROGRESS case=12/40 id=liver_012 status=cached\n")
    assert progress == CaseProgress(12, 40, "liver_012", "cached")
    assert progress.fraction == pytest.approx(0.3)
    assert "liver_012" in progress.describe()


def test_epoch_lines_of_auv_train_are_parsed_with_extra_fields_ignored():
    progress = parse_progress_line("PROGRESS epoch=3/100 step=250 loss=0.8125 dice=0.42 lr=0.0098")
    assert isinstance(progress, EpochProgress)
    assert (progress.epoch, progress.epochs, progress.step) == (3, 100, "250")
    assert progress.loss == pytest.approx(0.8125) and progress.dice == pytest.approx(0.42)
    assert progress.fraction == pytest.approx(0.03)


def test_an_epoch_line_without_metrics_has_nan_metrics():
    progress = parse_progress_line("PROGRESS epoch=1/2 step=0")
    assert math.isnan(progress.loss) and math.isnan(progress.dice)


@pytest.mark.parametrize("line", [
    "scoring case 3",
    "PROGRESS",
    "PROGRESS case=3 id=a status=ok",        # no total
    "PROGRESS case=x/4 id=a status=ok",      # not a number
    "PROGRESS case=3/4 status=ok",           # no id
    "PROGRESS epoch=two/4",
    "progress case=1/2 id=a status=ok",      # the prefix is exact
])
def test_other_and_malformed_lines_are_log_text(line):
    assert parse_progress_line(line) is None


def test_score_command_for_one_case_has_every_setting():
    settings = ScoreJob(dataset="/d/img 1.nii.gz", label="/d/lab.nii.gz", label_names="/d/labels.json",
                             case_id="c1", output="/o", backbone="medsam2", checkpoint="/w/m.pt", mode="classwise",
                             device="cuda", reference="/r/reference.json", scorers="all")
    command = score_command("/py", settings)
    assert command[:3] == ["/py", "-c", CLI_ENTRY]
    assert command[3:] == ["score", "/d/img 1.nii.gz", "--label", "/d/lab.nii.gz", "--label-names", "/d/labels.json",
                           "--case-id", "c1", "--out", "/o", "--backbone", "medsam2", "--checkpoint", "/w/m.pt",
                           "--mode", "classwise", "--device", "cuda", "--scorers", "all", "--reference", "/r/reference.json",
                           "--no-progress"]


def test_train_command_with_exclusions_and_resume():
    command = train_command("/py", TrainJob("/d", "/run", backbone="swinunetr", duo=True, epochs=5,
                                                 exclusions="/o/exclusions.json", resume=True))
    assert command[3:] == ["train", "/d", "--out", "/run", "--backbone", "swinunetr", "--duo", "--epochs", "5",
                           "--device", "auto", "--exclusions", "/o/exclusions.json", "--resume"]


@pytest.mark.parametrize("build", [
    lambda: score_command("py", ScoreJob(dataset="", output="/o")),
    lambda: score_command("py", ScoreJob(dataset="/d", output=" ")),
    lambda: train_command("py", TrainJob("/d", "/o", epochs=0)),
    lambda: nnunet_train_command("py", NnUNetTrainJob(0)),
    lambda: nnunet_train_command("py", NnUNetTrainJob(5, configuration="3d")),
    lambda: nnunet_train_command("py", NnUNetTrainJob(5, trainer=" ")),
])
def test_missing_settings_are_refused_before_anything_runs(build):
    with pytest.raises(ValueError):
        build()


def test_the_built_score_command_is_accepted_by_the_real_cli():
    """The real ``auv`` parser accepts every option the module passes (``--help`` ends before scoring)."""
    command = score_command(sys.executable, ScoreJob(dataset="img.nii.gz", label="lab.nii.gz",
                                                          label_names="l.json", case_id="c", output="/tmp/o",
                                                          reference="r.json", scorers="all", runtime="openvino"))
    assert command[command.index("--runtime") + 1] == "openvino"
    parser_check = command[:3] + ["score", "--help"]
    result = subprocess.run(parser_check, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    for option in [a for a in command[4:] if a.startswith("--")]:
        assert option in result.stdout, f"auv score has no {option}"


def test_the_built_train_command_is_accepted_by_the_real_cli():
    command = train_command(sys.executable, TrainJob("/d", "/run", duo=False, exclusions="/e.json", resume=True))
    result = subprocess.run(command[:3] + ["train", "--help"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    for option in [a for a in command[4:] if a.startswith("--")]:
        assert option in result.stdout, f"auv train has no {option}"


def test_the_built_nnunet_train_command_reaches_nnunetv2_train_with_the_auv_trainers_found():
    """``auv train --engine nnunet`` hands its arguments to nnUNetv2_train: its --help is nnU-Net's, and the
    trainer the module names is found through nnUNet_extTrainer in the process it starts."""
    pytest.importorskip("nnunetv2")
    command = nnunet_train_command(sys.executable, NnUNetTrainJob(17, "2d", "all", "nnUNetTrainerAUVWeighted_Paper", "cpu"))
    result = subprocess.run(command[:6] + ["-h"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage: nnUNetv2_train" in result.stdout and "-tr TR" in result.stdout and "-device DEVICE" in result.stdout
    find = ("import os, sys; from auvcore.nnunet.discovery import with_trainer_folder; os.environ.update(with_trainer_folder()); "
            "from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find; "
            f"print(find({command[command.index('-tr') + 1]!r}).__module__)")
    found = subprocess.run([sys.executable, "-c", find], capture_output=True, text=True, timeout=300, check=False)
    assert found.returncode == 0 and found.stdout.strip().endswith("auvcore.nnunet.trainers"), found.stderr


def test_the_scorers_asked_for_the_loaded_case_exist_and_need_no_cohort():
    from auvcore.scorers import CASE_SCORERS, parse_scorers
    from AUVSlicerLib.job_commands import CASE_REVIEW_SCORERS

    names = set(parse_scorers(CASE_REVIEW_SCORERS)) - {"auv"}
    assert names and names <= set(CASE_SCORERS)
