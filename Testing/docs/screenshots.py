"""The documentation's screenshots, rendered from a real run's pages in headless Chromium (Playwright).

Usage:
    python Testing/docs/screenshots.py                        # runs `auv demo` in a temporary folder first (minutes)
    python Testing/docs/screenshots.py --demo auv-demo        # the pages of an `auv demo` folder you already have
    python Testing/docs/screenshots.py --demo auv-demo --only report explain-page --out /tmp/shots

Each picture is a ``Shot``: the page of a run it shows, where the picture starts on that page and how tall it
is. A page is opened by a context manager that takes the run's folder and yields a URL for as long as the page
can be read, so a page served by a process (a server started in the ``with`` and stopped after it) is one more
``Shot`` in ``SHOTS``, beside the files ``auv demo`` writes. The PNGs go to ``Resources/Screenshots`` (the site
shows them through ``docs/images``), reduced to a 256-colour palette to stay small.

Chromium is the system's (``--chromium``, default ``/usr/bin/chromium``: Debian's ``chromium`` package); this
never downloads a browser (Playwright's own ``playwright install`` is not needed).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPOSITORY / "Resources" / "Screenshots"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: Headless, and nothing that reaches out: no sandbox (CI runs as root), GPU, background networking or updates.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")
WIDTH = 1280

PageOpener = Callable[[Path], ContextManager[str]]


@dataclass(frozen=True)
class Shot:
    """One picture of one page of a run.

    Attributes:
        name: the PNG's name without ``.png``.
        page: opens the page for the run folder and yields its URL while it can be read.
        start: the text of the heading that the picture starts at; the top of the page when None.
        height: the picture's height in CSS pixels (its width is ``WIDTH``).
        caption: what the picture shows, for the log.
    """

    name: str
    page: PageOpener
    start: str | None = None
    height: int = 900
    caption: str = ""


def _file_page(find: Callable[[Path], Path]) -> PageOpener:
    """A page that is a file of the run, found by ``find(run)``: its ``file://`` URL."""

    @contextlib.contextmanager
    def open_page(run: Path) -> Iterator[str]:
        path = find(run)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not in the run folder {run} (is it an `auv demo` folder?)")
        yield path.resolve().as_uri()

    return open_page


def hardest_structure(run: Path) -> tuple[str, str]:
    """The (case, class) with the lowest S of a run's results: the one ``auv demo`` writes an explain page for."""
    from auvcore.commands.demo import easy_and_hard
    from auvcore.results import read_results

    table = read_results(run / "results")
    case_id, class_name, _ = easy_and_hard(table[table["status"] == "ok"])["hard"]
    return case_id, class_name


def hardest_explain_page(run: Path) -> Path:
    """The explain page of :func:`hardest_structure`, where ``auv demo`` writes it."""
    from auvcore.results import safe_file_name

    case_id, class_name = hardest_structure(run)
    return run / "explain" / f"{safe_file_name(case_id)}_{safe_file_name(class_name)}.html"


REPORT = _file_page(lambda run: run / "results" / "report.html")

#: Every screenshot of the site, in the order they are taken. Add a page's picture here.
SHOTS: tuple[Shot, ...] = (
    Shot("report", REPORT, height=1000, caption="the cohort report: the AUV histogram and the most suspect structures"),
    Shot("report-structures", REPORT, start="Most suspect structures", height=760,
         caption="the report's most suspect structures, ranked by the review score"),
    Shot("explain-page", _file_page(hardest_explain_page), height=1150,
         caption="the explain page of the structure with the lowest S"),
)


def _palette_png(png: bytes, path: Path) -> None:
    """Write ``png`` as a 256-colour PNG: the pages are flat colours and a few plots, which this keeps legible."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def take(shots: Sequence[Shot], run: Path, out: Path, chromium: str = DEFAULT_CHROMIUM) -> list[Path]:
    """Render each shot's page of ``run`` in headless Chromium and write ``out/<name>.png``; returns the files."""
    from playwright.sync_api import sync_playwright

    if not Path(chromium).is_file():
        raise FileNotFoundError(f"{chromium}: no Chromium there (Debian: apt-get install chromium; or --chromium PATH)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        try:
            for shot in shots:
                with shot.page(run) as url:
                    page = browser.new_page(viewport={"width": WIDTH, "height": shot.height})
                    page.goto(url, wait_until="load")
                    top = 0.0
                    if shot.start is not None:
                        box = page.locator("h1, h2, h3", has_text=shot.start).first.bounding_box()
                        if box is None:
                            raise ValueError(f"{url}: no heading '{shot.start}' to start the {shot.name} picture at")
                        top = max(box["y"] + page.evaluate("window.scrollY") - 12, 0.0)
                    full_height = page.evaluate("document.documentElement.scrollHeight")
                    height = min(shot.height, max(full_height - top, 1))
                    png = page.screenshot(full_page=True, clip={"x": 0, "y": top, "width": WIDTH, "height": height})
                    page.close()
                path = out / f"{shot.name}.png"
                _palette_png(png, path)
                written.append(path)
                print(f"{path}: {shot.caption or shot.name}")
        finally:
            browser.close()
    return written


def run_demo(folder: Path) -> Path:
    """``auv demo`` into ``folder``, on the sample data kept in ``Testing/data/sample_cohort`` (fetched there once)."""
    data = REPOSITORY / "Testing" / "data" / "sample_cohort"
    subprocess.run([sys.executable, "-m", "auvcore.cli", "demo", "--out", str(folder), "--data", str(data), "--no-progress"],
                   check=True)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    names = [shot.name for shot in SHOTS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="an `auv demo` folder to take the pages from (default: run the demo first)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the PNGs go (default: {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", choices=names, metavar="SHOT", help=f"take only these: {', '.join(names)}")
    parser.add_argument("--chromium", default=DEFAULT_CHROMIUM, help=f"the Chromium executable (default: {DEFAULT_CHROMIUM})")
    args = parser.parse_args(argv)
    shots = [shot for shot in SHOTS if not args.only or shot.name in args.only]
    with contextlib.ExitStack() as stack:
        run = args.demo or run_demo(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auv-screenshots-"))))
        take(shots, run, args.out, args.chromium)
    return 0


if __name__ == "__main__":
    sys.exit(main())
