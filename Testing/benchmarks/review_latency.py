"""How fast ``auv review`` answers in a real browser: a key press to the new view image, and saving a fix.

Two cohorts of three cases each, one real CT with its real label and two copies of that label with a planted
error (the audit's own ``dilate`` and ``shift``): the sample 512 x 512 x 20 DICOM CT (31 TotalSegmentator
structures) and the 191-slice aorta CT (233 x 167 x 191, 7 vessels and a vertebra). Each is scored once with
``auv score --scorers agreement`` (the per-case cache makes later runs instant), then served by ``auv review``
and driven in Debian's Chromium through Playwright:

* N pressed where the next structure of the queue is in the same case, and where it is in another case: the
  time from the key's ``keydown`` in the page to the axial view's first new frame (the ``src`` change of its
  image), both on the page's clock; where the queue has too few neighbours of one case (the aorta cohort's
  structures interleave), a click on another structure of the shown case in the queue, from its ``mousedown``;
* Save (S) after a paint stroke: from the key to the page's "Saved corrections/..." message.

The server reads the next cases of the queue ahead while the reviewer looks at the current one, as it does for a
reviewer: each move starts from a settled page. Prints the medians and 90th percentiles, and the load average of the
machine before and after (the figures depend on it).

Usage:
    python Testing/benchmarks/review_latency.py [--data Testing/data] [--work /tmp/auv-review-latency] [--moves 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from auvcore.audit.corruptions import plant
from auvcore.cli import main as auv
from auvcore.imaging import write_array_like
from auvcore.review.queue import ReviewQueue
from auvcore.sample_data import fetch_aorta_case, fetch_dicom_case, fetch_sample_cohort
from auvcore.workstation.driver import ReviewPage, ReviewServer, open_chromium

DATA = Path(__file__).resolve().parents[1] / "data"
SCORE = "agreement"
#: (planted error, the structure it goes to) of the two copies of each cohort's label.
PLANTS = {"dicom": (("dilate", "liver"), ("shift", "kidney_right")),
          "aorta": (("dilate", "aorta"), ("shift", "vertebrae_T12"))}

#: Records, on the page's clock, when a key goes down and when the axial view's image changes.
WATCH = """
() => {
  window.auvBench = {keys: [], frames: []};
  document.addEventListener("keydown", () => window.auvBench.keys.push(performance.now()), true);
  document.addEventListener("mousedown", () => window.auvBench.keys.push(performance.now()), true);
  const image = document.getElementById("auv-view-Red").parentElement.querySelector("img.image-display-area");
  new MutationObserver(() => window.auvBench.frames.push(performance.now()))
    .observe(image, {attributes: true, attributeFilter: ["src"]});
  new MutationObserver(() => {
    if (document.body.innerText.includes("Saved corrections/")) { window.auvBench.saved = performance.now(); }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""


def cohort(name: str, image: Path, label: Path, names: Path, work: Path) -> Path:
    """A manifest of the real case and two copies of its label with a planted error each."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    if manifest.exists():
        return manifest
    source = sitk.ReadImage(str(label))
    values = sitk.GetArrayFromImage(source)
    by_name = json.loads(names.read_text())["labels"]
    rows = [{"case_id": name, "image": str(image), "label": str(label), "label_names": str(names)}]
    for kind, structure in PLANTS[name]:
        _, planted, _ = plant(kind, values.astype(np.float32), values, np.random.default_rng(0), target=by_name[structure])
        path = folder / f"{name}_{kind}_{structure}.nii.gz"
        write_array_like(planted, source, path)
        rows.append({"case_id": f"{name}_{kind}", "image": str(image), "label": str(path), "label_names": str(names)})
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def first_frame_after(page: ReviewPage, act: Callable[[], None], what: str, timeout_s: float = 20.0) -> float:
    """Do ``act`` (a key press or a click); milliseconds from its keydown or mousedown to the axial view's first
    new frame."""
    page.page.evaluate("() => { window.auvBench.keys = []; window.auvBench.frames = []; }")
    act()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        times = page.page.evaluate("() => window.auvBench")
        frames = [f for f in times["frames"] if times["keys"] and f > times["keys"][0]]
        if frames:
            return frames[0] - times["keys"][0]
        page.page.wait_for_timeout(20)
    raise RuntimeError(f"no new frame within {timeout_s} s of {what}")


def settle(page: ReviewPage, seconds: float = 3.0) -> None:
    """Wait until the server has made the case's 3D surfaces and read the next cases ahead."""
    page.page.wait_for_timeout(seconds * 1000)


def moves(folder: Path, page: ReviewPage, count: int) -> dict[str, list[float]]:
    """N from positions whose next structure is in the same case, and from those where it is in another.

    Where the queue holds too few neighbours of one case (a cohort's structures interleave in it), the rest of
    the same-case moves click another structure of the shown case in the queue instead of pressing N.
    """
    entries = ReviewQueue.of_folder(folder, SCORE).entries
    rows = page.page.locator("#auv-queue tbody tr")

    def show(position: int) -> None:
        rows.nth(position).click()
        page.wait_for_text("auv-current-title", f"{position + 1} of {len(entries)}:")
        settle(page)

    timings: dict[str, list[float]] = {"same case": [], "another case": []}
    for position in range(len(entries) - 1):
        kind = "same case" if entries[position + 1].case_id == entries[position].case_id else "another case"
        if len(timings[kind]) >= count:
            continue
        show(position)
        timings[kind].append(first_frame_after(page, lambda: page.press("N"), "N"))
        page.wait_for_text("auv-current-title", f"{position + 2} of {len(entries)}:")
        if all(len(v) >= count for v in timings.values()):
            break
    pairs = [(a, b) for a in range(len(entries)) for b in range(len(entries))
             if a != b and entries[a].case_id == entries[b].case_id and abs(a - b) > 1]
    for start, target in pairs[: count - len(timings["same case"])]:
        show(start)
        timings["same case"].append(first_frame_after(page, lambda: rows.nth(target).click(), f"a click on row {target + 1}"))
        page.wait_for_text("auv-current-title", f"{target + 1} of {len(entries)}:")
    return timings


def saves(page: ReviewPage, count: int) -> list[float]:
    """Paint a stroke across the axial view (a little lower each time) and save: milliseconds from S to "Saved"."""
    page.press("F")
    page.page.locator("#auv-fix").wait_for()
    timings = []
    for number in range(count):
        page.wait_until_still()
        page.stroke(height=0.4 + 0.02 * number, start=0.3, end=0.7, steps=10)  # applied before S is pressed
        page.page.evaluate("() => { window.auvBench.keys = []; window.auvBench.saved = null; }")
        page.press("S")
        message = page.wait_for_message("Saved corrections/", "Nothing to save")
        if not message.startswith("Saved corrections/"):
            raise RuntimeError(f"save {number + 1}: {message}")
        page.page.wait_for_function("() => window.auvBench.saved !== null && window.auvBench.saved !== undefined",
                                    timeout=60_000)
        times = page.page.evaluate("() => window.auvBench")
        timings.append(times["saved"] - times["keys"][0])
        page.page.locator("#auv-message").filter(has_text="Saved").wait_for(state="hidden", timeout=20_000)
    return timings


def summary(values: list[float]) -> str:
    if not values:
        return "no sample"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return f"median {statistics.median(values):.0f} ms, 90th percentile {p90:.0f} ms, n = {len(values)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="where the sample data is fetched (default: Testing/data)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/auv-review-latency"),
                        help="the cohorts and their scores (kept: a later run reuses them)")
    parser.add_argument("--moves", type=int, default=10, help="moves of each kind per cohort (default: 10)")
    parser.add_argument("--saves", type=int, default=4, help="saves per cohort (default: 4)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cohorts", nargs="+", choices=sorted(PLANTS), default=["dicom", "aorta"],
                        help="which cohorts (default: both)")
    args = parser.parse_args()
    fetch_sample_cohort(args.data / "sample_cohort")  # the TotalSegmentator class names
    cohorts = {}
    if "dicom" in args.cohorts:
        series, dicom_label = fetch_dicom_case(args.data / "dicom_ct")
        cohorts["dicom"] = cohort("dicom", series, dicom_label, args.data / "sample_cohort" / "labels_total.json",
                                  args.work)
    if "aorta" in args.cohorts:
        aorta_image, aorta_label, aorta_names = fetch_aorta_case(args.data / "aorta_ct")
        cohorts["aorta"] = cohort("aorta", aorta_image, aorta_label, aorta_names, args.work)
    load_before = os.getloadavg()
    results = {}
    with open_chromium() as browser:
        for name, manifest in cohorts.items():
            scores = args.work / name / "scores"
            if auv(["score", str(manifest), "--out", str(scores), "--scorers", SCORE, "--device", args.device,
                    "--no-progress"]) != 0:
                return 1
            served = args.work / name / "review"  # a fresh copy: the saves write corrections, a rescore would follow
            shutil.rmtree(served, ignore_errors=True)
            shutil.copytree(scores, served)
            with ReviewServer.start(served, "--score", SCORE) as server:
                page = ReviewPage.open(browser, server.address)
                page.page.evaluate(WATCH)
                settle(page)
                results[name] = {**moves(served, page, args.moves), "save": saves(page, args.saves)}
                page.page.close()
            for kind, values in results[name].items():  # each cohort's figures as soon as they are measured
                print(f"  {name:6s} {kind:13s}: {summary(values)}", flush=True)
    load_after = os.getloadavg()
    print(f"\nauv review latency on {os.cpu_count()} CPUs; load average (1, 5, 15 min) before "
          f"{', '.join(f'{v:.1f}' for v in load_before)}, after {', '.join(f'{v:.1f}' for v in load_after)}")
    for name, timings in results.items():
        for kind, values in timings.items():
            goal = {"same case": 300, "another case": 2000, "save": 1000}[kind]
            print(f"  {name:6s} {kind:13s}: {summary(values)} (goal: median <= {goal} ms)")
    (args.work / "review_latency.json").write_text(json.dumps({"load_before": load_before, "load_after": load_after,
                                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
