"""The documentation site: its command reference is the parsers', and it builds with no broken link."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from auvcore.cli_reference import cli_reference

REPOSITORY = Path(__file__).resolve().parents[2]
CLI_PAGE = REPOSITORY / "docs" / "reference" / "cli.md"


def test_the_command_reference_page_is_what_the_parsers_say():
    assert CLI_PAGE.read_text(encoding="utf-8") == cli_reference(), (
        f"{CLI_PAGE} differs from the `auv` parsers: regenerate it with "
        "`python -m auvcore.cli_reference docs/reference/cli.md`")


def test_the_command_reference_lists_every_command_and_option():
    import argparse

    from auvcore.cli import build_parser

    page = cli_reference()
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        assert f"## `auv {name}`" in page
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in page, f"auv {name} {option}"


def test_the_site_builds_strictly(tmp_path: Path):
    """``mkdocs build --strict``: a broken link, a missing page or an API docstring that does not resolve fails."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=REPOSITORY, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "index.html").is_file() and (tmp_path / "reference" / "cli" / "index.html").is_file()
