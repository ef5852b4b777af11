"""The ``auv`` command: a thin argparse front over the library.

Sub-commands live in :mod:`auvcore.commands`; each module registers its own.
Bad input ends with a one-line error naming the file and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

from .errors import InputError

COMMAND_MODULES = ("score", "demo", "curate", "train", "audit", "explain", "benchmark", "propose")


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
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"auv: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
