"""The README's picture of ``auv review``, taken from the real thing: a server on a copy of RESULTS, Chromium, Playwright.

Two verdicts are given on the copy (the folder itself is not touched), the page goes back to the top of the queue,
and the browser's screenshot of the whole page is written to OUT.

Usage:
    python Testing/review_screenshot.py RESULTS [--score agreement] [--out Resources/Screenshots/auv-review.png]

The README's picture is of the Slicer module tests' cohort (the sample CT's four organs labelled by
TotalSegmentator's full and fast models, and the full labels with the liver moved by three slices), which
``AUVSlicer/Testing/Python`` scores into ``Testing/data/auvslicer_scores/scores``: the same cohort as the module's
review picture, so the two faces can be compared.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from auvcore.workstation.driver import ReviewPage, ReviewServer, open_chromium

OUT = Path(__file__).resolve().parents[1] / "Resources" / "Screenshots" / "auv-review.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder of `auv score` (scored with per-slice scorers)")
    parser.add_argument("--score", default="agreement")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / args.results.name
        shutil.copytree(args.results, copy)
        with ReviewServer.start(copy, "--score", args.score) as server, open_chromium() as browser:
            page = ReviewPage.open(browser, server.address, width=1440, height=860)
            for key, note in (("2", "moved up by about three slices"), ("1", "")):
                if note:
                    page.page.locator("#auv-note").fill(note)
                    page.press("Escape")
                page.press(key)
                page.page.wait_for_timeout(1500)
            page.page.locator("#auv-queue tbody tr").first.click()
            page.wait_for_text("auv-current-title", "1 of")
            page.page.wait_for_timeout(4000)  # the 3D surfaces follow the slice views
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.page.screenshot(path=str(args.out))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
