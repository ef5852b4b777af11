"""The documentation site: its command reference is the parsers', it builds with no broken link, and its
screenshots are taken from a real run's pages."""

from __future__ import annotations

import doctest
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from auvcore.cli_reference import cli_reference

REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.md"
CLI_PAGE = REPOSITORY / "docs" / "reference" / "cli.md"
SCREENSHOTS_SCRIPT = REPOSITORY / "Testing" / "docs" / "screenshots.py"
DOCSTRINGS_EXTENSION = REPOSITORY / "Testing" / "docs" / "griffe_docstrings.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


def test_the_readme_is_short_and_starts_with_the_two_commands_that_ci_runs():
    """At most 200 lines, and its first block is the fresh machine's two commands: set up and ``auv demo``; set up
    and the tests exactly as ``.ci/run`` runs them."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "README.md is over 200 lines: move the detail to a page of docs/"
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert first_block and not re.search(r"^#+ ", text[text.index("\n"):first_block.start()], re.MULTILINE)
    commands = [line for line in first_block.group(1).splitlines() if line and not line.startswith("#")]
    assert commands == ["bash Testing/setup_env.sh && .venv/bin/auv demo",
                        "bash Testing/setup_env.sh && .venv/bin/python -m pytest"]
    ci = (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "bash Testing/setup_env.sh" in ci and any(line.startswith(".venv/bin/python -m pytest ") for line in ci)


def test_every_link_of_the_readme_reaches_a_file_of_the_repository():
    """The README is read on the forge, outside the site's strict build: its relative links are checked here."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    relative = [target for target in targets if "://" not in target]
    assert relative, "the README links into docs/"
    assert [target for target in relative if not (REPOSITORY / target).exists()] == []


def _module_of(path: Path, name: str):
    """A script of ``Testing/docs`` imported from its file (``Testing/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_api_pages_docstring_rewrite_does_what_its_example_says():
    """``Testing/docs`` is outside ``pytest --doctest-modules``' paths: its extension's example runs here."""
    result = doctest.testmod(_module_of(DOCSTRINGS_EXTENSION, "auv_docs_griffe_docstrings"))
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_every_screenshot_is_taken_from_a_real_runs_pages(scored: Path, tmp_path: Path):
    """The screenshot script on a run shaped as ``auv demo``'s (the small cohort's results, its report, the explain
    page of its lowest-S structure): one legible PNG per shot, each starting where it says."""
    from auvcore.cli import main
    from PIL import Image

    screenshots = _module_of(SCREENSHOTS_SCRIPT, "auv_docs_screenshots")
    run = tmp_path / "run"
    shutil.copytree(scored, run / "results")
    assert main(["report", str(run / "results"), "--out", str(run / "results" / "report.html")]) == 0
    case_id, class_name = screenshots.hardest_structure(run)
    assert main(["explain", str(run / "results"), "--case", case_id, "--class", class_name, "--out", str(run / "explain"),
                 "--device", "cpu"]) == 0

    written = screenshots.take(screenshots.SHOTS, run, tmp_path / "shots", chromium=CHROMIUM)

    assert [path.name for path in written] == [f"{shot.name}.png" for shot in screenshots.SHOTS]
    for shot, path in zip(screenshots.SHOTS, written):
        image = Image.open(path)
        assert image.mode == "P" and image.width == screenshots.WIDTH and 200 <= image.height <= shot.height, (path, image.size)
        pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 10, f"{path.name} is (nearly) blank"
        # A picture that starts at a heading shows that heading's dark text in its first rows, on the page's white.
        if shot.start is not None:
            assert (pixels[:60] < 100).any(), f"{path.name} does not start at '{shot.start}'"
