"""The review loop on real data: a planted label error, its score, its correction, and the score after.

On the sample cohort (default), one structure of one case is corrupted with the audit's own corruption code
(default: ct_full_model's liver dilated by 2 voxels in-plane), the cohort is scored with it, the clean structure is
written back through the corrections contract (:func:`auvcore.results.save_correction`, the path the Slicer module's
Save and the browser workstation use), and the folder is scored again (only the corrected case is rescored). Prints
the structure's value and z for every scorer clean / corrupted / corrected and the report's Corrections section; writes
``OUT/review/report.html`` and ``OUT/correction_loop.csv``.

Usage:
    python Testing/benchmarks/correction_loop.py --out /tmp/loop                 # the sample cohort, about 10 minutes on 2 cores
    python Testing/benchmarks/correction_loop.py --out /tmp/loop --clean RESULTS --manifest M --case C --structure S
        # reuse RESULTS, a folder `auv score M --scorers all` wrote (the smoke test does this on a small cohort)
"""

from __future__ import annotations

import argparse
import csv
import html
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from auvcore.audit.corruptions import plant
from auvcore.cli import main as auv
from auvcore.datasets import discover_cases
from auvcore.imaging import write_array_like
from auvcore.results import ResultsFolder, read_structures, save_correction
from auvcore.sample_data import fetch_sample_cohort

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"


def corrupted_manifest(manifest: Path, case_id: str, structure: str, kind: str, magnitude: float, out: Path) -> tuple[Path, Path, int]:
    """A copy of ``manifest`` whose ``case_id`` has ``structure`` corrupted; (manifest, clean label, voxels changed)."""
    specs = {s.case_id: s for s in discover_cases(manifest)}
    spec = specs[case_id]
    value = next(v for v, name in spec.class_names.items() if name == structure)
    label = sitk.ReadImage(str(spec.label))
    labels = sitk.GetArrayFromImage(label)
    _, planted, what = plant(kind, labels.astype(np.float32), labels, np.random.default_rng(0), magnitude, target=value)
    out.mkdir(parents=True, exist_ok=True)
    planted_path = out / f"{case_id}_{kind}_{structure}.nii.gz"
    write_array_like(planted, label, planted_path)
    rows = []
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for column in ("image", "label", "label_names"):
                if row.get(column):
                    row[column] = str((manifest.parent / row[column]).resolve())
            if row["case_id"] == case_id:
                row["label"] = str(planted_path)
            rows.append(row)
    copy = out / "manifest.csv"
    with copy.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return copy, spec.label, what.changed_voxels


def structure_scores(folder: Path, case_id: str, structure: str) -> pd.Series:
    """Every scorer's value and robust z (``<scorer>_z``) of one structure in ``structures.csv``."""
    table = read_structures(folder)
    row = table[(table["case_id"] == case_id) & (table["class"] == structure)]
    scorers = [c[: -len("_z")] for c in table.columns if c.endswith("_z")]
    return row[[name for scorer in scorers for name in (scorer, f"{scorer}_z") if name in table.columns]].iloc[0].astype(float)


def corrections_section(report: Path) -> str:
    """The report's Corrections table as plain text rows."""
    page = report.read_text(encoding="utf-8")
    section = page[page.index("<h2 id='corrections'>"):]
    section = section[: section.index("<h2", 5)] if "<h2" in section[5:] else section
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section, flags=re.S)
    return "\n".join(" | ".join(html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                                for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)) for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, help="the cohort (default: the sample cohort, fetched once)")
    parser.add_argument("--clean", type=Path, help="a results folder `auv score MANIFEST --scorers all` already wrote")
    parser.add_argument("--case", default="ct_full_model")
    parser.add_argument("--structure", default="liver")
    parser.add_argument("--kind", default="dilate", help="an `auv audit` label corruption (default: dilate)")
    parser.add_argument("--magnitude", type=float, default=2.0)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    manifest = args.manifest or fetch_sample_cohort(SAMPLE)
    score = ["--scorers", "all", "--runtime", args.runtime, "--device", args.device, "--no-progress"]
    started = time.perf_counter()
    clean = args.out / "clean"
    if args.clean:
        shutil.copytree(args.clean, clean, dirs_exist_ok=True)
    if auv(["score", str(manifest), "--out", str(clean), *score]) != 0:
        return 1
    planted, clean_label, changed = corrupted_manifest(manifest, args.case, args.structure, args.kind, args.magnitude,
                                                       args.out / "planted")
    review = args.out / "review"
    shutil.rmtree(review, ignore_errors=True)
    shutil.copytree(clean, review)  # the clean cases come from the cache
    if auv(["score", str(planted), "--out", str(review), *score]) != 0:
        return 1
    corrupted_z = structure_scores(review, args.case, args.structure)
    saved = save_correction(ResultsFolder(review), args.case, sitk.ReadImage(str(clean_label)),
                            note=f"{args.structure} restored from the clean label", reviewer="correction_loop.py")
    if auv(["score", str(planted), "--out", str(review), *score]) != 0:
        return 1
    figures = pd.DataFrame({"clean": structure_scores(clean, args.case, args.structure), "corrupted": corrupted_z,
                            "corrected": structure_scores(review, args.case, args.structure)})
    figures.index.name = "score"
    figures.to_csv(args.out / "correction_loop.csv")
    auv(["report", str(review), "--out", str(review / "report.html"), "--by", "label_check"])
    print(f"\n{args.case} / {args.structure}: {args.kind} {args.magnitude:g} changed {changed} voxels; the correction "
          f"{saved.file} changed {', '.join(f'{c.structure} +{c.added}/-{c.removed} (Dice {c.dice:.3f})' for c in saved.changes)}")
    print(figures.round(2).to_string())
    print("\nThe report's Corrections section:")
    print(corrections_section(review / "report.html"))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
