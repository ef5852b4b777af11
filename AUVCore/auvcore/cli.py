"""The ``auv`` command: a thin argparse front over the library.

Sub-commands live in :mod:`auvcore.commands`; each module registers its own.
Bad input ends with a one-line error naming the file and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from importlib import metadata

from .errors import InputError

#: ``auv train --engine``: the bundled trainer, or nnU-Net v2's ``nnUNetv2_train`` with the AUV trainers.
ENGINES = ("bundled", "nnunet")
COMMAND_MODULES = ("score", "demo", "curate", "train", "nnunet", "audit", "explain", "benchmark", "review", "propose")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auv", description="Aleatoric uncertainty (AUV) of medical volumes and annotations.")
    parser.add_argument("--version", action="version", version=f"auvcore {metadata.version('auvcore')}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"auvcore.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"auvcore.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    engine, nnunet_arguments = training_engine(argv)
    if engine == "nnunet":  # nnU-Net parses its own arguments
        from .commands.nnunet import run_nnunet_train

        return _reporting_input_errors(lambda: run_nnunet_train(nnunet_arguments))
    args = build_parser().parse_args(argv)
    return _reporting_input_errors(lambda: args.func(args))


def training_engine(argv: list[str]) -> tuple[str, list[str]]:
    """``auv train``'s ``--engine`` and the other arguments (what ``--engine nnunet`` hands to ``nnUNetv2_train``).

    Example:
        >>> training_engine(["train", "501", "2d", "0", "--engine", "nnunet", "-tr", "nnUNetTrainerDUO"])
        ('nnunet', ['501', '2d', '0', '-tr', 'nnUNetTrainerDUO'])
        >>> training_engine(["score", "data", "--out", "results"])[0]
        'bundled'
    """
    if argv[:1] != ["train"]:
        return "bundled", argv
    engine = argparse.ArgumentParser(prog="auv train", add_help=False, allow_abbrev=False)
    engine.add_argument("--engine", choices=ENGINES, default=ENGINES[0])
    known, rest = engine.parse_known_args(argv[1:])
    return known.engine, rest


def _reporting_input_errors(command: Callable[[], int | None]) -> int:
    try:
        return int(command() or 0)
    except InputError as error:
        print(f"auv: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
