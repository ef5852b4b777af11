"""How nnU-Net finds the AUV trainers: its ``nnUNet_extTrainer`` variable, a list of folders.

nnunetv2 (2.8.1 read here; ``nnunetv2.utilities.find_objects``) resolves ``-tr NAME`` first
inside its own ``nnunetv2.training.nnUNetTrainer`` package, then, when ``nnUNet_extTrainer``
is set, in each folder it names (separated by ``os.pathsep``): the folder goes on
``sys.path`` and every module in it is imported until one defines a ``nnUNetTrainer``
subclass of that name. ``nnUNetv2_predict`` resolves the trainer of a checkpoint the same
way, so the variable must be set for prediction too. :func:`trainer_folder` is the folder
that holds the one module re-exporting the AUV trainers; nothing is written into nnU-Net's
installed package.

Torch-free.

Example:
    >>> env = with_trainer_folder({"nnUNet_extTrainer": "/my/trainers"})
    >>> env[EXTERNAL_TRAINERS].split(os.pathsep)[1]
    '/my/trainers'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: nnU-Net's variable naming folders of trainers outside its package.
EXTERNAL_TRAINERS = "nnUNet_extTrainer"
#: The trainers nnU-Net finds there.
TRAINER_NAMES = ("nnUNetTrainerDUO", "nnUNetTrainerAUVWeighted", "nnUNetTrainerDUO_Paper", "nnUNetTrainerAUVWeighted_Paper")


def trainer_folder() -> Path:
    """The folder to name in ``nnUNet_extTrainer``."""
    return Path(__file__).resolve().parent / "external"


def with_trainer_folder(environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environment`` (default: this process's) with :func:`trainer_folder` first in ``nnUNet_extTrainer``,
    the folders it already named kept after it."""
    result = dict(os.environ if environment is None else environment)
    folder = str(trainer_folder())
    named = [p for p in result.get(EXTERNAL_TRAINERS, "").split(os.pathsep) if p and p != folder]
    result[EXTERNAL_TRAINERS] = os.pathsep.join([folder, *named])
    return result
