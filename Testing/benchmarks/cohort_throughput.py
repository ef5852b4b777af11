"""Cohort throughput: cases per minute with the scoring loop's steps one after another and overlapped with the model.

Usage: python Testing/benchmarks/cohort_throughput.py --work WORK [--cases 50] [--device auto] [--threads N]
       python Testing/benchmarks/cohort_throughput.py --work WORK --smoke

``score_cases`` (:mod:`auvcore.cohort.loop`) either runs each case's steps one after another (``read_ahead=False``:
hash the files and look the case up in the cache, read and prepare it, the model pass, write its files) or
overlaps them with the model (``read_ahead=True``, the default: a reading thread hashes, looks up and prepares the
next case, a writing thread writes the case before). Each cohort is scored both ways in one run, side by side,
each arm into a fresh output folder, with one ``CaseScorer`` whose model is loaded once before any timing:

(a) the sample cohort, ``Testing/data/sample_cohort/manifest.csv`` (4 cases: one CT with three labelings, one MR);
(b) a cohort of ``--cases`` cases (default 50) built once in ``WORK/cohort<N>`` from the real sample volumes: the
    sample cohort's 4 cases repeated in manifest order (repeat r gives ``<case>_rNN``), each repeat with its own
    copies of the two images carrying a seeded +-1 per-voxel perturbation (numpy ``default_rng([2030, r, i])``,
    integers in -1..1 added to the stored values, clipped to the type's range; written with SimpleITK with the
    source's geometry), and the sample's label maps as they are. So every case has its own cache key, and, as in
    the sample cohort, the three CT labelings of a repeat share one image (the model's encoder runs once for them);
    the last repeat may be cut short. ``WORK/cohort<N>/build.json`` records what was built; a matching build is reused.

Printed for each cohort and arm: seconds, cases per minute, the time in the model (the sum of the cases' model
steps, ``timings.total - timings.io`` of the records: the model pass, spectrum, scorers and the record) and the time
outside it (wall time minus that), the load average (1 min) before and after; then the ratio overlapped/serial of
cases per minute, and the largest difference in S between the arms (it must be 0: the records are the same).
The benchmark ends with a nonzero exit status when a case is not ``ok`` or the arms' S differ.

The machine's load changes the figures: compare the arms of one run, and read the load averages beside them.

``--smoke`` is the CI check (tests/test_cohort_throughput.py): two small cases cut from the sample volumes (3 CT
slices with two organs, 3 MR slices), one arm pair, about a minute on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"
SEED = 2030
BUILD_INFO = "build.json"


def _perturbed(image: sitk.Image, rng: np.random.Generator) -> sitk.Image:
    """``image`` with -1, 0 or +1 added to each voxel (clipped to its type), same geometry."""
    values = sitk.GetArrayFromImage(image)
    moved = values.astype(np.float64) + rng.integers(-1, 2, size=values.shape)
    if np.issubdtype(values.dtype, np.integer):
        limits = np.iinfo(values.dtype)
        moved = np.clip(moved, limits.min, limits.max)
    out = sitk.GetImageFromArray(moved.astype(values.dtype))
    out.CopyInformation(image)
    return out


def build_cohort(folder: Path, count: int) -> Path:
    """Write (or reuse) the ``count``-case cohort of the module docstring in ``folder``; returns its manifest."""
    from auvcore.datasets import discover_cases

    sample = discover_cases(SAMPLE_DIR / "manifest.csv")
    images = sorted({Path(spec.image).name for spec in sample})
    wanted = {"count": count, "seed": SEED, "cases": [s.case_id for s in sample],
              "sources": {name: os.path.getsize(SAMPLE_DIR / name) for name in images}}
    manifest, info = folder / "manifest.csv", folder / BUILD_INFO
    if manifest.exists() and info.exists() and json.loads(info.read_text()) == wanted:
        print(f"cohort: reusing {count} cases in {folder}")
        return manifest
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = ["case_id,image,label,label_names"]
    written: set[str] = set()
    for index in range(count):
        repeat, spec = divmod(index, len(sample))[0], sample[index % len(sample)]
        source = Path(spec.image).name
        image = f"images/r{repeat:02d}_{source}"
        if image not in written:
            rng = np.random.default_rng([SEED, repeat, images.index(source)])
            sitk.WriteImage(_perturbed(sitk.ReadImage(str(spec.image)), rng), str(folder / image), useCompression=True)
            written.add(image)
        rows.append(f"{spec.case_id}_r{repeat:02d},{image},{Path(spec.label).resolve()},{Path(spec.label_names).resolve()}")
    manifest.write_text("\n".join(rows) + "\n")
    info.write_text(json.dumps(wanted, indent=1))
    print(f"cohort: built {count} cases ({len(written)} perturbed images) in {folder}")
    return manifest


def build_smoke(folder: Path) -> Path:
    """Two small cases cut from the sample volumes: 3 CT slices with spleen and liver, 3 MR slices with the liver."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source, slices, keep in (("ct", "example_ct_sm", slice(12, 15), None), ("ct_seg", "example_seg", slice(12, 15), (1, 5)),
                                       ("mr", "example_mr_sm", slice(8, 11), None), ("mr_seg", "example_seg_mr", slice(8, 11), (5,))):
        image = sitk.ReadImage(str(SAMPLE_DIR / f"{source}.nii.gz"))[:, :, slices]
        if keep is not None:
            values = sitk.GetArrayFromImage(image)
            kept = sitk.GetImageFromArray(np.where(np.isin(values, keep), values, 0).astype(np.uint8))
            kept.CopyInformation(image)
            image = kept
        sitk.WriteImage(image, str(folder / f"{name}.nii.gz"))
    shutil.copy(SAMPLE_DIR / "labels_total.json", folder / "labels.json")
    manifest = folder / "manifest.csv"
    manifest.write_text("case_id,image,label,label_names\nct,ct.nii.gz,ct_seg.nii.gz,labels.json\n"
                        "mr,mr.nii.gz,mr_seg.nii.gz,labels.json\n")
    return manifest


def run_arm(scorer, specs, out: Path, read_ahead: bool) -> dict:
    """One arm: ``score_cases`` of every case into a fresh ``out``; its figures."""
    from auvcore.cohort import score_cases

    shutil.rmtree(out, ignore_errors=True)
    backend = scorer.backend
    if hasattr(backend, "_cache"):  # no arm starts with the other arm's last image embeddings
        backend._cache = type(backend._cache)()
    statuses: list[str] = []
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    records = score_cases(specs, out, scorer.settings, scorer, progress=False,
                          emit=lambda line: statuses.append(line.rsplit("status=", 1)[-1]), read_ahead=read_ahead)
    seconds = time.perf_counter() - start
    model = sum(r.timings["total"] - r.timings["io"] for r in records if r.timings)
    return {"read_ahead": read_ahead, "cases": len(records), "seconds": seconds, "per_minute": 60 * len(records) / seconds,
            "model": model, "outside": seconds - model, "load_before": load_before, "load_after": os.getloadavg()[0],
            "statuses": statuses, "S": [r.S for r in records]}


def compare(name: str, scorer, manifest: Path, out: Path) -> bool:
    """Both arms on one cohort, serial first; prints their figures; whether every case came out ok and alike."""
    from auvcore.datasets import discover_cases

    specs = discover_cases(manifest)
    slug = name.replace(" ", "_")
    arms = [run_arm(scorer, specs, out / f"{slug}-serial", read_ahead=False),
            run_arm(scorer, specs, out / f"{slug}-overlapped", read_ahead=True)]
    print(f"\n{name}: {len(specs)} cases ({manifest})")
    print(f"{'arm':<11} {'seconds':>8} {'cases/min':>9} {'in model':>9} {'outside':>8} {'outside %':>9} {'load before':>11} {'after':>6}")
    for arm in arms:
        label = "overlapped" if arm["read_ahead"] else "serial"
        print(f"{label:<11} {arm['seconds']:8.1f} {arm['per_minute']:9.2f} {arm['model']:9.1f} {arm['outside']:8.1f} "
              f"{100 * arm['outside'] / arm['seconds']:8.1f}% {arm['load_before']:11.2f} {arm['load_after']:6.2f}")
    serial, overlapped = arms
    differences = [abs(a - b) for a, b in zip(serial["S"], overlapped["S"]) if a is not None and b is not None]
    same = np.array_equal(np.array(serial["S"], dtype=float), np.array(overlapped["S"], dtype=float), equal_nan=True)
    print(f"overlapped/serial: {overlapped['per_minute'] / serial['per_minute']:.3f}x cases/min; "
          f"max |dS| between the arms {max(differences, default=0.0):.1e} ({'same records' if same else 'RECORDS DIFFER'})")
    bad = [s for arm in arms for s in arm["statuses"] if s != "ok"]
    if bad:
        print(f"{name}: {len(bad)} case(s) not ok: {sorted(set(bad))}", file=sys.stderr)
    return same and not bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="where the cohort is built and the arms write")
    parser.add_argument("--cases", type=int, default=50, help="the built cohort's size (default 50)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--smoke", action="store_true", help="two small cases, one arm pair (the CI check)")
    args = parser.parse_args()

    import torch
    from auvcore.cohort import CaseScorer, ScoreSettings

    if args.threads:
        torch.set_num_threads(args.threads)
    scorer = CaseScorer(ScoreSettings(device=args.device))
    start = time.perf_counter()
    _ = scorer.backend  # the model is loaded once, before any arm's clock starts
    print(f"model loaded in {time.perf_counter() - start:.1f} s; runtime {scorer.runtime['name']}, device {scorer.backend.device}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    out = args.work / "out"
    if args.smoke:
        ok = compare("smoke", scorer, build_smoke(args.work / "smoke"), out)
    else:
        ok = compare("sample cohort", scorer, SAMPLE_DIR / "manifest.csv", out)
        ok = compare(f"{args.cases}-case cohort", scorer, build_cohort(args.work / f"cohort{args.cases}", args.cases), out) and ok
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
