"""A real, unplanted check: how each scorer ranks two labelings of the same CT, class by class.

Usage: python Testing/benchmarks/labeling_check.py --out WORK [--device cpu]

The sample CT carries two real labelings: TotalSegmentator's full model
(``example_seg``) and its fast model (``example_seg_fast``), which is the
worse of the two. Both are scored with every per-case scorer (the cohort scorers need at
least three cases holding a class, and ``image_auv`` scores the image the
two share, so they are left out). For each scorer and each class both labelings
hold, the script prints which labeling the scorer finds more suspect, and
sums it up:

* ``fast worse``: the share of classes where the fast labeling scores higher
  (more suspect); 0.5 is what a coin would do. The two-sided sign-test p-value
  is beside it.
* ``rho vs 1-Dice``: Spearman's correlation, over classes, between the
  scorer's difference (fast - full) and 1 - Dice between the two labelings:
  does the scorer's difference grow where the labelings differ most?

Cost: one LiteMedSAM pass over the CT (30 slices) and two decoder passes,
about 5 minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy.stats import binomtest, spearmanr

from auvcore.cli import main as auv
from auvcore.datasets import discover_cases
from auvcore.sample_data import fetch_sample_cohort
from auvcore.scorers import CASE_SCORERS

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"
CASES = ("ct_full_model", "ct_fast_model")


def dice_by_class(full: np.ndarray, fast: np.ndarray, names: dict[int, str]) -> dict[str, float]:
    result = {}
    for value in sorted(set(np.unique(full)) & set(np.unique(fast)) - {0}):
        a, b = full == value, fast == value
        result[names.get(int(value), f"label_{value}")] = 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (the manifest and the scores)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    manifest = fetch_sample_cohort(SAMPLE_DIR)
    specs = {s.case_id: s for s in discover_cases(manifest)}
    args.out.mkdir(parents=True, exist_ok=True)
    pair_manifest = args.out / "pair.csv"
    pair_manifest.write_text("case_id,image,label,label_names\n" + "".join(
        f"{case},{specs[case].image},{specs[case].label},{manifest.parent / 'labels_total.json'}\n" for case in CASES))
    scorers = ",".join(CASE_SCORERS)
    if auv(["score", str(pair_manifest), "--out", str(args.out / "scores"), "--device", args.device, "--scorers", scorers, "--no-progress"]):
        return 1
    full, fast = (json.loads((args.out / "scores" / "cases" / f"{case}.json").read_text()) for case in CASES)
    spec = specs["ct_full_model"]
    dice = dice_by_class(sitk.GetArrayFromImage(sitk.ReadImage(str(spec.label))),
                         sitk.GetArrayFromImage(sitk.ReadImage(str(specs["ct_fast_model"].label))), spec.class_names)

    rows, per_class = [], []
    # image_auv scores the image, which both labelings share: it cannot tell them apart.
    for name in ["auv", *(n for n in CASE_SCORERS if n != "image_auv")]:
        if name == "auv":
            u_full = {c["name"]: 1 - c["S"] for c in full["classes"] if c["S"] is not None}
            u_fast = {c["name"]: 1 - c["S"] for c in fast["classes"] if c["S"] is not None}
        else:
            u_full = {k: v for k, v in full["scores"][name]["classes"].items() if v is not None}
            u_fast = {k: v for k, v in fast["scores"][name]["classes"].items() if v is not None}
        classes = sorted(set(u_full) & set(u_fast) & set(dice))
        if not classes:
            rows.append({"scorer": name, "classes": 0})
            continue
        difference = np.array([u_fast[c] - u_full[c] for c in classes])
        worse = int((difference > 0).sum())
        decided = int((difference != 0).sum())
        rho = spearmanr(difference, [1 - dice[c] for c in classes]).statistic if len(classes) > 2 else np.nan
        rows.append({"scorer": name, "classes": len(classes), "fast worse": worse / len(classes),
                     "sign p": binomtest(worse, decided).pvalue if decided else np.nan, "rho vs 1-Dice": rho})
        per_class += [{"scorer": name, "class": c, "dice": dice[c], "u_full": u_full[c], "u_fast": u_fast[c]} for c in classes]
    summary = pd.DataFrame(rows)
    pd.DataFrame(per_class).to_csv(args.out / "labeling_check.csv", index=False)
    print(f"classes both labelings hold: Dice full vs fast median {np.median(list(dice.values())):.3f}, "
          f"min {min(dice.values()):.3f} ({min(dice, key=dice.get)})")
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
        print(summary.to_string(index=False))
    print(f"per class: {args.out / 'labeling_check.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
