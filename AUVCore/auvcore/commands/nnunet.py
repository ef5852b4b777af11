"""``auv nnunet export`` and ``auv nnunet trainer-path``; ``auv train --engine nnunet`` runs ``nnUNetv2_train``.

Example (shell):
    auv nnunet export results --dataset-id 501 --name Liver     # $nnUNet_raw/Dataset501_Liver
    nnUNetv2_plan_and_preprocess -d 501 -c 2d 3d_fullres
    auv train --engine nnunet 501 3d_fullres 0 -tr nnUNetTrainerDUO   # nnUNetv2_train with the AUV trainers found
    export nnUNet_extTrainer=$(auv nnunet trainer-path)         # for nnUNetv2_train / nnUNetv2_predict run directly

The export is torch-free; training needs the ``nnunet`` extra (``pip install "auvcore[nnunet]"``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ..nnunet.discovery import EXTERNAL_TRAINERS, TRAINER_NAMES, trainer_folder, with_trainer_folder
from .curate import add_original_labels_option

#: nnU-Net's console script that ``auv train --engine nnunet`` runs.
NNUNET_TRAIN = "nnUNetv2_train"


def export_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`~auvcore.nnunet.export.export_dataset` that ``auv nnunet export``'s options give.

    Example:
        >>> from auvcore.cli import build_parser
        >>> export_options(build_parser().parse_args(["nnunet", "export", "results", "--dataset-id", "7"]))["dataset_id"]
        7
    """
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    return {"results": args.results, "dataset_id": args.dataset_id, "name": args.name, "raw": args.raw,
            "exclusions": args.exclusions, "original_labels": args.original_labels, "classes": classes}


def run_export(args: argparse.Namespace) -> int:
    from ..nnunet.export import export_dataset

    try:
        exported = export_dataset(**export_options(args))
    except ValueError as error:  # an id out of range, a name nnU-Net cannot use
        print(f"auv: error: {error}", file=sys.stderr)
        return 2
    print(exported.describe())
    print(f"next: nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c 2d 3d_fullres; then "
          f"auv train --engine nnunet {args.dataset_id} 3d_fullres 0 -tr {TRAINER_NAMES[0]}")
    return 0


def run_trainer_path(_args: argparse.Namespace) -> int:
    print(trainer_folder())
    return 0


def nnunet_entry_point(script: str):
    """The function nnU-Net installs as the console script ``script`` (e.g. ``nnUNetv2_train``).

    Raises:
        InputError: when nnU-Net is not installed.
    """
    from importlib.metadata import entry_points

    found = list(entry_points(group="console_scripts", name=script))
    if not found:
        raise InputError(script, 'is not installed: install nnU-Net with the extra, pip install "auvcore[nnunet]"')
    return found[0].load()


def with_device_resolved(arguments: Sequence[str]) -> list[str]:
    """``-device auto`` (the Slicer module's default) as ``cuda`` when PyTorch sees a GPU, else ``cpu``; nnU-Net
    itself takes cpu, cuda or mps. Every other argument is passed on as it is.

    Example:
        >>> with_device_resolved(["501", "2d", "0", "-device", "cpu"])
        ['501', '2d', '0', '-device', 'cpu']
    """
    arguments = list(arguments)
    for index, argument in enumerate(arguments[:-1]):
        if argument == "-device" and arguments[index + 1] == "auto":
            from ..devices import resolve_device

            arguments[index + 1] = resolve_device("auto").type
    return arguments


def run_nnunet_train(arguments: Sequence[str]) -> int:
    """``nnUNetv2_train ARGUMENTS`` in this process, with the AUV trainers' folder first in ``nnUNet_extTrainer``
    (and ``-device auto`` resolved, :func:`with_device_resolved`).

    Its exit status is nnU-Net's: 0 when the run finished, 1 on an error (nnU-Net prints it).
    """
    train = nnunet_entry_point(NNUNET_TRAIN)
    arguments = with_device_resolved(arguments)
    os.environ.update(with_trainer_folder())
    print(f"auv train: {NNUNET_TRAIN} {' '.join(arguments)} ({EXTERNAL_TRAINERS}={os.environ[EXTERNAL_TRAINERS]})", flush=True)
    saved = sys.argv
    sys.argv = [NNUNET_TRAIN, *arguments]
    try:
        train()
    except SystemExit as exit_:  # argparse's --help and errors
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = saved
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    nnunet = subparsers.add_parser("nnunet", help="export the curated cohort to nnU-Net v2, find the DUO / AUV trainers",
                                   description="DUO and AUV-weighted training inside nnU-Net v2 (the nnunet extra). "
                                               f"Trainers: {', '.join(TRAINER_NAMES)}.")
    commands = nnunet.add_subparsers(dest="nnunet_command", required=True,
                                     help="what to do (auv nnunet export --help, auv nnunet trainer-path --help)")
    export = commands.add_parser("export", help="write the retained cases as an nnU-Net raw dataset, with their S",
                                 description="Write the retained cases of a results folder (its exclusions.json, their "
                                             "corrected labels where there are any) to $nnUNet_raw/DatasetNNN_NAME: "
                                             "imagesTr, labelsTr, dataset.json, and auv_scales.json (each case's S per "
                                             "class, from the results folder; nothing is rescored). A dataset id that "
                                             "exists is refused.")
    export.add_argument("results", help="folder written by `auv score`, or its results.csv")
    export.add_argument("--dataset-id", type=int, required=True, help="nnU-Net dataset id, 1-999")
    export.add_argument("--name", help="dataset name (default: the results folder's name)")
    export.add_argument("--raw", help="nnU-Net's raw folder (default: $nnUNet_raw)")
    export.add_argument("--exclusions", help="exclusion list to apply (default: RESULTS/exclusions.json, if any)")
    export.add_argument("--classes", help="comma-separated class names to export (default: every class the labels hold)")
    add_original_labels_option(export, "export")
    export.set_defaults(func=run_export)
    path = commands.add_parser("trainer-path", help=f"print the folder to name in {EXTERNAL_TRAINERS}",
                               description=f"The folder that nnU-Net's {EXTERNAL_TRAINERS} must name for nnUNetv2_train "
                                           "and nnUNetv2_predict to find the AUV trainers (auv train --engine nnunet "
                                           "sets it itself).")
    path.set_defaults(func=run_trainer_path)
