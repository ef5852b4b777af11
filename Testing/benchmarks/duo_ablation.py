"""DUO / data-filtering ablation on a small real task: baseline, DUO, filtering, both.

Usage: python Testing/benchmarks/duo_ablation.py --work WORK [--epochs 20] [--steps 25]
       [--keep 0.9] [--classes liver,spleen,kidney_left,kidney_right,stomach] [--device cpu] [--tiny]

The task, built from the real sample cohort (TotalSegmentator's example CT, three
real labelings of it):

* The CT (3 mm) is cut in-plane into a grid of ``--tile`` x ``--tile`` tiles
  over all slices (optionally shrunk by ``--shrink`` first). The tiles form a
  checkerboard: the "white" tiles are training cases, once with each labeling
  (full model, fast model, ROI subset: the last labels the liver only, so the
  other classes are missing there: real, unplanted label noise); the "black"
  tiles are the test set, judged against the full model's labels.
* The training cases are scored with ``auv score`` (LiteMedSAM, classwise);
  filtering keeps the ``--keep`` fraction with the lowest AUV (``auv filter``'s
  quantile rule) and excludes the rest.
* Four runs with the same seed, patch and schedule: baseline (plain Dice +
  BCE, all cases), DUO, filtering, DUO + filtering. Each is evaluated on the
  test tiles with ``auv predict``'s code; Dice per class is pooled over the
  test tiles (summed overlaps), so a class absent from a tile does not count
  as a perfect or a failed tile.

The defaults (20 epochs of 25 steps, 32^3 patches, 16 filters) take about
0.7 s a step on one CPU core: about half an hour for the four runs, plus the
scoring (LiteMedSAM, 15 cases of 30 slices).

Every stage is resumable: scores are cached by ``auv score``, finished runs are
reused and unfinished ones resumed. ``--tiny`` (1 epoch, 2 steps, 8 filters)
only checks that the pipeline works; its numbers mean nothing. The paper's
figures for reference (full scale, GPU, nnU-Net): +0.59 Dice for DUO, +1.35 for
filtering at 90%.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from auvcore.cli import main as auv
from auvcore.curation import ExclusionList, save_exclusions
from auvcore.devices import resolve_device
from auvcore.duo.checkpoint import LATEST, load_checkpoint
from auvcore.duo.predict import load_model, segment
from auvcore.duo.trainer import TrainConfig, train
from auvcore.imaging import load_case
from auvcore.results import read_results
from auvcore.sample_data import fetch_sample_cohort

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"
IMAGE = "example_ct_sm.nii.gz"
LABELINGS = {"full": "example_seg.nii.gz", "fast": "example_seg_fast.nii.gz", "roi": "example_seg_roi_subset.nii.gz"}
REFERENCE = "full"
RUNS = {"baseline": (False, False), "duo": (True, False), "filter": (False, True), "duo+filter": (True, True)}


def _tiles(size: tuple[int, int, int], tile: int) -> list[tuple[int, int, bool]]:
    """(x0, y0, is_training) for a checkerboard of in-plane tiles (sitk index order x, y)."""
    return [(ix * tile, iy * tile, (ix + iy) % 2 == 0) for iy in range(size[1] // tile) for ix in range(size[0] // tile)]


def build_task(work: Path, tile: int, shrink: int) -> tuple[Path, list[tuple[Path, Path]], Path]:
    """Write the tiles; returns (training manifest, [(test image, reference label)], label names file)."""
    cohort = fetch_sample_cohort(SAMPLE_DIR).parent
    tiles_dir = work / "tiles"
    tiles_dir.mkdir(parents=True, exist_ok=True)
    factor = [shrink, shrink, 1]  # keep every slice: they are 3 mm already
    image = sitk.Shrink(sitk.ReadImage(str(cohort / IMAGE)), factor)
    labels = {name: sitk.Shrink(sitk.ReadImage(str(cohort / file)), factor) for name, file in LABELINGS.items()}
    names = tiles_dir / "labels_total.json"
    names.write_text((cohort / "labels_total.json").read_text())
    rows, tests = [], []
    for x0, y0, training in _tiles(image.GetSize(), tile):
        key = f"x{x0}_y{y0}"
        crop = image[x0 : x0 + tile, y0 : y0 + tile, :]
        sitk.WriteImage(crop, str(tiles_dir / f"{key}.nii.gz"))
        for name, label in labels.items():
            if training or name == REFERENCE:
                sitk.WriteImage(label[x0 : x0 + tile, y0 : y0 + tile, :], str(tiles_dir / f"{key}_{name}.nii.gz"))
        if training:
            rows += [(f"{key}_{name}", f"{key}.nii.gz", f"{key}_{name}.nii.gz", names.name) for name in LABELINGS]
        else:
            tests.append((tiles_dir / f"{key}.nii.gz", tiles_dir / f"{key}_{REFERENCE}.nii.gz"))
    manifest = tiles_dir / "train_manifest.csv"
    with manifest.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["case_id", "image", "label", "label_names"])
        writer.writerows(rows)
    return manifest, tests, names


def filter_cases(manifest: Path, work: Path, keep: float, device: str) -> tuple[Path, set[str]]:
    """Score the training cases with ``auv score`` and exclude all but the ``keep`` fraction with the lowest AUV."""
    scores = work / "scores"
    auv(["score", str(manifest), "--out", str(scores), "--device", device, "--no-progress"])  # non-zero when a case fails
    results = read_results(scores)  # failed cases have no AUV: the quantile neither keeps nor excludes them
    exclusions = ExclusionList()
    exclusions.apply_quantile(results, keep)
    path = work / "exclusions.json"
    if path.exists():
        path.unlink()  # the ablation's own file, recomputed from the scores every time
    save_exclusions(path, exclusions)
    return path, exclusions.excluded()


def run(config: TrainConfig) -> None:
    latest = Path(config.out) / LATEST
    if latest.exists():
        if load_checkpoint(latest)["epoch"] >= config.epochs:
            return
        config = replace(config, resume=True)
    if train(config) != 0:
        raise SystemExit(f"training {config.out} failed")


def pooled_dice(run_dir: Path, tests: list[tuple[Path, Path]], device: str) -> dict[str, float]:
    """Dice per class over all test tiles together (sums of overlaps and sizes)."""
    torch_device = resolve_device(device)
    model, plan = load_model(run_dir, torch_device)
    overlap = np.zeros(len(plan.classes))
    size = np.zeros(len(plan.classes))
    for image_path, label_path in tests:
        predicted = segment(model, plan, image_path, torch_device)
        reference = load_case(image_path, label_path).labels
        for c, label_id in enumerate(plan.label_ids):
            p, r = predicted == label_id, reference == label_id
            overlap[c] += 2 * np.logical_and(p, r).sum()
            size[c] += p.sum() + r.sum()
    return {name: (float(o / s) if s else float("nan")) for name, o, s in zip(plan.classes, overlap, size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path, help="working folder (tiles, scores, runs)")
    parser.add_argument("--classes", default="liver,spleen,kidney_left,kidney_right,stomach")
    parser.add_argument("--tile", type=int, default=32)
    parser.add_argument("--shrink", type=int, default=1, help="in-plane downsampling before tiling")
    parser.add_argument("--keep", type=float, default=0.9)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiny", action="store_true", help="1 epoch of 2 steps, 8 filters: checks the pipeline only")
    args = parser.parse_args()
    if args.tiny:
        args.epochs, args.steps, args.base_filters = 1, 2, 8
    torch.manual_seed(args.seed)
    manifest, tests, _ = build_task(args.work, args.tile, args.shrink)
    exclusions, excluded = filter_cases(manifest, args.work, args.keep, args.device)
    print(f"{len(tests)} test tiles; filtering at keep={args.keep} excludes: {', '.join(sorted(excluded)) or 'none'}")
    classes = tuple(c.strip() for c in args.classes.split(","))
    table: dict[str, dict[str, float]] = {}
    for name, (duo, filtered) in RUNS.items():
        config = TrainConfig(dataset=str(manifest), out=str(args.work / "runs" / name), duo=duo,
                             exclusions=str(exclusions) if filtered else None, epochs=args.epochs, steps_per_epoch=args.steps,
                             patch=(args.patch,) * 3, batch=2, device=args.device, seed=args.seed, val_fraction=0.0,
                             classes=classes, base_filters=args.base_filters, log_every=max(1, args.steps))
        run(config)
        table[name] = pooled_dice(Path(config.out), tests, args.device)
    header = ["run", *classes, "mean"]
    print("\nDice per class on the test tiles (pooled)" + (" -- TINY SETTING, NOT A RESULT" if args.tiny else ""))
    print(" | ".join(f"{h:>12}" for h in header))
    for name, dice in table.items():
        values = [dice.get(c, float("nan")) for c in classes]
        print(" | ".join([f"{name:>12}", *(f"{v:12.4f}" for v in values), f"{np.nanmean(values):12.4f}"]))
    (args.work / "ablation.json").write_text(json.dumps({"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                                                          "excluded": sorted(excluded), "dice": table}, indent=1))


if __name__ == "__main__":
    main()
