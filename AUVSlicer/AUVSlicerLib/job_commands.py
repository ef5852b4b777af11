"""Build the ``auv score`` / ``auv train`` command lines from the module's settings.

Training runs either the bundled trainer (``auv train``) or nnU-Net v2 with the AUV
trainers (``auv train --engine nnunet``, which runs ``nnUNetv2_train``).

The command runs the core's CLI through a Python interpreter (Slicer's
``PythonSlicer`` inside Slicer, ``sys.executable`` elsewhere), so it works
whether or not pip put an ``auv`` script on the PATH. Arguments are a list,
never a shell string, so paths with spaces are safe.

Example:
    >>> settings = ScoreJob(dataset="/data/Task01", output="/out", device="cpu")
    >>> score_command("python", settings)[3:]
    ['score', '/data/Task01', '--out', '/out', '--backbone', 'litemedsam', '--mode', 'classwise', '--device', 'cpu', '--no-progress']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Runs ``auvcore.cli.main`` with the arguments that follow it (argv[0] is ``-c``).
CLI_ENTRY = "import sys; from auvcore.cli import main; sys.exit(main())"

Device = Literal["auto", "cpu", "cuda"]

#: The label-aware scorers that need no cohort: what the module asks for when it scores the loaded
#: case, so the case table can show them (they cost about 1% of the scoring time).
CASE_REVIEW_SCORERS = "agreement,fisher,boundary_gradient,boundary_logits,boundary_distance,contrast,homogeneity,consistency"


@dataclass(frozen=True)
class ScoreJob:
    """What ``auv score`` needs: a dataset (or one image + label) and where results go.

    ``dataset`` is a dataset folder or CSV manifest, or one image when ``label``
    is given (then ``label_names``, a dataset.json-style file, names its classes
    and ``case_id`` names the case). ``reference`` places the cases on a saved
    cohort's AUV scale. ``scorers`` (e.g. ``all``) adds the label-aware
    scorers' columns, which the cohort browser can sort by.
    """

    dataset: str
    output: str
    label: str = ""
    label_names: str = ""
    case_id: str = ""
    backbone: str = "litemedsam"
    checkpoint: str = ""
    mode: Literal["classwise", "image"] = "classwise"
    device: Device = "auto"
    #: What runs the model (``auv score --runtime``): auto is torch on a GPU, OpenVINO on the CPU.
    runtime: str = "auto"
    reference: str = ""
    scorers: str = ""


@dataclass(frozen=True)
class TrainJob:
    """What ``auv train`` needs; ``exclusions`` trains on the retained cases only."""

    dataset: str
    output: str
    backbone: Literal["dynunet", "swinunetr"] = "dynunet"
    duo: bool = True
    epochs: int = 1000  # auvcore.duo.config.TrainConfig.epochs (a test keeps them equal)
    device: Device = "auto"
    exclusions: str = ""
    resume: bool = False


#: The training panel's "Trainer" choice (the parameter node's ``trainEngine``).
BUNDLED, NNUNET = "bundled", "nnU-Net"
#: The nnU-Net trainers the panel offers: the AUV ones (``auvcore.nnunet.discovery.TRAINER_NAMES``, which a test
#: keeps equal) and nnU-Net's own.
NNUNET_TRAINERS = ("nnUNetTrainerDUO", "nnUNetTrainerAUVWeighted", "nnUNetTrainerDUO_Paper", "nnUNetTrainerAUVWeighted_Paper",
                   "nnUNetTrainer")
NNUNET_CONFIGURATIONS = ("3d_fullres", "2d", "3d_lowres", "3d_cascade_fullres")
NNUNET_FOLDS = ("0", "1", "2", "3", "4", "all")


@dataclass(frozen=True)
class NnUNetTrainJob:
    """What ``nnUNetv2_train`` needs: a preprocessed dataset (id), a configuration, a fold and a trainer.

    nnU-Net finds its data and writes its model through ``nnUNet_preprocessed`` and ``nnUNet_results``,
    which must be set in the environment Slicer runs in (as nnU-Net asks of every user).
    """

    dataset: int
    configuration: str = NNUNET_CONFIGURATIONS[0]
    fold: str = NNUNET_FOLDS[0]
    trainer: str = NNUNET_TRAINERS[0]
    device: Device = "auto"


def _require(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is not set")
    return value


def score_command(python: str, settings: ScoreJob) -> list[str]:
    """The argument list (program first) that runs ``auv score`` with ``settings``."""
    arguments = [python, "-c", CLI_ENTRY, "score", _require(settings.dataset, "the dataset or image")]
    if settings.label:
        arguments += ["--label", settings.label]
        if settings.label_names:
            arguments += ["--label-names", settings.label_names]
        if settings.case_id:
            arguments += ["--case-id", settings.case_id]
    arguments += ["--out", _require(settings.output, "the output folder")]
    arguments += ["--backbone", settings.backbone]
    if settings.checkpoint:
        arguments += ["--checkpoint", settings.checkpoint]
    arguments += ["--mode", settings.mode, "--device", settings.device]
    if settings.runtime != "auto":
        arguments += ["--runtime", settings.runtime]
    if settings.scorers:
        arguments += ["--scorers", settings.scorers]
    if settings.reference:
        arguments += ["--reference", settings.reference]
    # The PROGRESS lines carry the progress; a redrawn bar would only flood the log.
    return arguments + ["--no-progress"]


def train_command(python: str, settings: TrainJob) -> list[str]:
    """The argument list (program first) that runs ``auv train`` with ``settings``.

    Example:
        >>> train_command("python", TrainJob("/d", "/run", duo=False, epochs=2))[3:]
        ['train', '/d', '--out', '/run', '--backbone', 'dynunet', '--no-duo', '--epochs', '2', '--device', 'auto']
    """
    if settings.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {settings.epochs}")
    arguments = [python, "-c", CLI_ENTRY, "train", _require(settings.dataset, "the dataset"),
                 "--out", _require(settings.output, "the run folder"), "--backbone", settings.backbone,
                 "--duo" if settings.duo else "--no-duo", "--epochs", str(settings.epochs),
                 "--device", settings.device]
    if settings.exclusions:
        arguments += ["--exclusions", settings.exclusions]
    if settings.resume:
        arguments.append("--resume")
    return arguments


def nnunet_train_command(python: str, settings: NnUNetTrainJob) -> list[str]:
    """The argument list (program first) that runs ``auv train --engine nnunet``, i.e. ``nnUNetv2_train``.

    Example:
        >>> nnunet_train_command("python", NnUNetTrainJob(501, "2d", "all", device="cpu"))[3:]
        ['train', '--engine', 'nnunet', '501', '2d', 'all', '-tr', 'nnUNetTrainerDUO', '-device', 'cpu']
    """
    if not 1 <= settings.dataset <= 999:
        raise ValueError(f"an nnU-Net dataset id lies in 1-999, got {settings.dataset}")
    if settings.configuration not in NNUNET_CONFIGURATIONS or settings.fold not in NNUNET_FOLDS:
        raise ValueError(f"unknown nnU-Net configuration {settings.configuration!r} or fold {settings.fold!r}")
    return [python, "-c", CLI_ENTRY, "train", "--engine", "nnunet", str(settings.dataset), settings.configuration,
            settings.fold, "-tr", _require(settings.trainer, "the nnU-Net trainer"), "-device", settings.device]
