"""The ``auv`` command reference as Markdown, generated from the real argparse parsers.

The documentation site's ``docs/reference/cli.md`` is this module's output; a test
fails when a command or option changes and the page was not regenerated::

    python -m auvcore.cli_reference docs/reference/cli.md

Example:
    >>> page = cli_reference()
    >>> page.splitlines()[0], "## `auv score`" in page, "`--original-labels`" in page
    ('# Command reference', True, True)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import build_parser

HEADER = """# Command reference

Every `auv` command and option, generated from the command's own parsers
(`python -m auvcore.cli_reference docs/reference/cli.md`; a test fails when they differ).
`auv COMMAND --help` prints the same in a terminal.
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _expanded_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's help with ``%(default)s`` and the like filled in, as ``--help`` prints it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return parser._get_formatter()._expand_help(action)  # noqa: SLF001 (argparse's own expansion, as --help)


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    value = ""
    if action.nargs != 0:
        metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices else action.dest.upper())
        value = " " + (" ".join(metavar) if isinstance(metavar, tuple) else metavar)
    return ", ".join(f"`{name}{value}`" for name in action.option_strings)


def _default(action: argparse.Action) -> str:
    if not action.option_strings or action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    default = action.default
    if isinstance(default, (list, tuple)):
        default = " ".join(map(str, default))
    return f"`{default}`"


def _command_section(name: str, parser: argparse.ArgumentParser, summary: str) -> str:
    lines = [f"## `auv {name}`", ""]
    if summary:
        lines += [_cell(summary[0].upper() + summary[1:]) + ".", ""]
    if parser.description and parser.description != summary:
        lines += [_cell(parser.description), ""]
    usage = " ".join(parser.format_usage().split())
    lines += ["```text", usage.removeprefix("usage: "), "```", ""]
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]  # noqa: SLF001
    if actions:
        lines += ["| argument | default | what it does |", "| --- | --- | --- |"]
        lines += [f"| {_cell(_names(a))} | {_default(a)} | {_cell(_expanded_help(parser, a))} |" for a in actions]
        lines.append("")
    return "\n".join(lines)


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The Markdown page of every ``auv`` command, in the order ``auv --help`` lists them."""
    parser = parser or build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    summaries = {choice.dest: choice.help or "" for choice in subparsers._choices_actions}  # noqa: SLF001
    sections = [HEADER]
    for name, command in subparsers.choices.items():
        sections.append(_command_section(name, command, summaries.get(name, "")))
    return "\n".join(sections).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m auvcore.cli_reference PAGE.md", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(cli_reference(), encoding="utf-8")
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
