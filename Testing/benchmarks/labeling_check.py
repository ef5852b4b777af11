"""A real, unplanted check: how each scorer ranks two labelings of the same CT, class by class.

Usage: python Testing/benchmarks/labeling_check.py --out WORK [--device cpu] [--slabs]

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

``--slabs`` makes the check for every scorer, the cohort ones (``label_check``,
``mahalanobis``, ``prototype``, ...) included: the CT is cut into the slab cohort's
7 slabs (:func:`auvcore.sample_data.build_slab_cohort`), each once with either
labeling, the 14 slabs are scored as one cohort with ``--scorers all``, and each
structure's z (``structures.csv``) is compared with the same slab's structure in
the other labeling. A structure in adjacent slabs shares slices, so the pairs are
not independent: the sign test and the Spearman are made over classes, on each
class's mean difference over its slabs (the pair-level figures are printed beside
them). Cost: about 10 minutes on two CPU cores.
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
from auvcore.sample_data import build_slab_cohort, fetch_sample_cohort
from auvcore.scorers import CASE_SCORERS

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"
CASES = ("ct_full_model", "ct_fast_model")


def dice_by_class(full: np.ndarray, fast: np.ndarray, names: dict[int, str]) -> dict[str, float]:
    result = {}
    for value in sorted(set(np.unique(full)) & set(np.unique(fast)) - {0}):
        a, b = full == value, fast == value
        result[names.get(int(value), f"label_{value}")] = 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())
    return result


def summarise(difference: np.ndarray, one_minus_dice: np.ndarray) -> dict[str, float]:
    """How often the fast labeling is the more suspect (with the two-sided sign test) and whether the
    difference follows 1 - Dice."""
    worse, decided = int((difference > 0).sum()), int((difference != 0).sum())
    rho = spearmanr(difference, one_minus_dice).statistic if len(difference) > 2 else np.nan
    return {"fast worse": worse / len(difference), "sign p": binomtest(worse, decided).pvalue if decided else np.nan,
            "rho vs 1-Dice": rho}


def slab_check(out: Path, device: str, limit: int | None = None) -> int:
    """Every scorer's z, full against fast labeling of the same slab (see the module's docstring);
    ``limit`` keeps the first slabs only (the smoke test's)."""
    slabs = out / "slabs"
    manifest = build_slab_cohort(SAMPLE_DIR, slabs, limit=limit)
    rows = [line for line in manifest.read_text().splitlines() if not line.startswith("mr_")]
    ct_manifest = slabs / "ct_manifest.csv"
    ct_manifest.write_text("\n".join(rows) + "\n")
    if auv(["score", str(ct_manifest), "--out", str(out / "slab_scores"), "--device", device, "--scorers", "all", "--no-progress"]):
        return 1
    specs = {s.case_id: s for s in discover_cases(ct_manifest)}
    table = pd.read_csv(out / "slab_scores" / "structures.csv")
    table["slab"] = table["case_id"].str.split("_").str[-1]
    table["labeling"] = table["case_id"].str.split("_").str[1]
    pairs = table.pivot_table(index=["slab", "class"], columns="labeling",
                              values=[c for c in table.columns if c.endswith("_z")], aggfunc="first")
    dice = {}
    for full_id in (case for case in specs if case.startswith("ct_full_")):
        fast_id = full_id.replace("ct_full_", "ct_fast_")
        slab = full_id.split("_")[-1]
        arrays = [sitk.GetArrayFromImage(sitk.ReadImage(str(specs[case].label))) for case in (full_id, fast_id)]
        dice.update({(slab, name): value for name, value in dice_by_class(*arrays, specs[full_id].class_names).items()})
    pairs = pairs[[key in dice for key in pairs.index]]
    one_minus_dice = pd.Series([1 - dice[key] for key in pairs.index], index=pairs.index)
    summary, per_pair = [], []
    for column in sorted({c for c, _ in pairs.columns}):
        difference = (pairs[(column, "fast")] - pairs[(column, "full")]).dropna()
        if difference.empty:
            continue
        by_class = difference.groupby(level="class").mean()
        class_dice = one_minus_dice[difference.index].groupby(level="class").mean()[by_class.index]
        pooled = summarise(difference.to_numpy(), one_minus_dice[difference.index].to_numpy())
        summary.append({"scorer": column.removesuffix("_z"), "classes": len(by_class),
                        **summarise(by_class.to_numpy(), class_dice.to_numpy()),
                        "pairs": len(difference), **{f"pairs: {k}": v for k, v in pooled.items()}})
        per_pair += [{"scorer": column.removesuffix("_z"), "slab": slab, "class": name, "dice": dice[(slab, name)],
                      "z_full": pairs.at[(slab, name), (column, "full")], "z_fast": pairs.at[(slab, name), (column, "fast")]}
                     for slab, name in difference.index]
    pd.DataFrame(per_pair).to_csv(out / "labeling_check_slabs.csv", index=False)
    frame = pd.DataFrame(summary).sort_values("rho vs 1-Dice", ascending=False)
    print(f"{len(dice)} (slab, class) pairs both labelings hold: Dice full vs fast median {np.median(list(dice.values())):.3f}")
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(frame.to_string(index=False))
    print(f"per pair: {out / 'labeling_check_slabs.csv'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (the manifest and the scores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--slabs", action="store_true", help="every scorer, on the slab cohort of the CT (see above)")
    parser.add_argument("--limit", type=int, help="with --slabs: the first N slabs only (a smoke run)")
    args = parser.parse_args()
    manifest = fetch_sample_cohort(SAMPLE_DIR)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.slabs:
        return slab_check(args.out, args.device, args.limit)
    specs = {s.case_id: s for s in discover_cases(manifest)}
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
        rows.append({"scorer": name, "classes": len(classes), **summarise(difference, np.array([1 - dice[c] for c in classes]))})
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
