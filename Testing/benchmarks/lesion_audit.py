"""The lesion audit's figures beyond what ``auv audit`` prints: today's ``label_check``, each part, leave-one-source-out,
and the proposed corrections against the clean labels.

Usage:
    python Testing/fetch_sample_data.py --lesions
    auv audit Testing/data/lesion_cohort/manifest.csv --out AUDIT --lesion-sizes --fraction 0.5 --repeats 4 --seed 1
    python Testing/benchmarks/lesion_audit.py AUDIT Testing/data/lesion_cohort/manifest.csv

Reads the audit folder (``planted.csv`` and the case records and feature caches under ``scores/``; no model
runs) and prints, for the label errors planted:

* how many corrupted and clean structures, cases, distinct scans and sources (patients) the figures rest on;
* structure-level AUROC, pooled over the kinds and per kind, of ``label_check`` as it was before the lesion work
  (the sum of the positive z of its six look-alike parts over every structure: ``before``), of ``label_check``
  now, of its look-alike parts alone and its case-intrinsic parts alone, and of each case-intrinsic part;
* leave-one-source-out: the case-intrinsic parts chosen (every subset, best pooled AUROC) on the structures of
  all sources but one, ``label_check`` with that choice computed for the left-out source's structures, the held-out
  values pooled over the sources into one AUROC beside the AUROC of the choice made on everything;
* per kind and per proposal rule (the model's outline; the label less the parts the model's mask does not touch,
  :func:`auvcore.results.proposals.targeted_correction`; the label moved onto the image's edge,
  :func:`auvcore.scorers.edges.snap_to_edges`), how often the proposed correction (``auv propose
  --accept`` of the corrupted copy) is closer to the clean label than the corrupted label is, how often further,
  and the median Dice to the clean label before and after accepting.

Each structure is judged in the cohort of its repeat (the clean cases and that repeat's corrupted copies), as
``auv audit`` judges it.
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from auvcore.audit.metrics import auroc
from auvcore.datasets import discover_cases
from auvcore.errors import InputError
from auvcore.results import ResultsFolder, class_matrix, read_case_record
from auvcore.results.proposals import PROPOSAL_RULES, proposed_label
from auvcore.results.table import case_modalities
from auvcore.scorers.cohort_scores import label_check_scores
from auvcore.scorers.registry import CASE_PARTS, COHORT_PARTS

LABEL_KINDS = ("dilate", "erode", "shift", "end_slice", "blob", "dropout", "swap")


@dataclass(frozen=True)
class Audit:
    """An audit's repeats: per repeat, the cohort's records, each case's kind and corrupted class names and scan."""

    repeats: list[tuple[list, list[str], list[set[str]], list[str]]]
    planted: pd.DataFrame
    scores: ResultsFolder
    folder: Path


def read_audit(folder: Path, manifest: Path) -> Audit:
    specs = discover_cases(manifest)
    planted = pd.read_csv(folder / "planted.csv")
    scores = ResultsFolder(folder / "scores")
    records = {}
    for case_id in [s.case_id for s in specs] + planted["case_id"].tolist():
        path = scores.case_json(case_id)
        if not path.exists():
            raise InputError(path, "is missing: run the audit to its end first")
        records[case_id] = read_case_record(path)
    repeats = []
    for repeat, part in planted.groupby("repeat"):
        mine = {row.source: row for row in part.itertuples()}
        cohort, kinds, corrupted, scans = [], [], [], []
        for spec in specs:
            row = mine.get(spec.case_id)
            cohort.append(records[row.case_id if row else spec.case_id])
            kinds.append(row.kind if row else "clean")
            ids = {int(value) for value in str(row.classes).split()} if row else set()
            corrupted.append({c.name for c in records[row.case_id].classes if c.id in ids} if row else set())
            scans.append(spec.source or spec.case_id)
        repeats.append((cohort, kinds, corrupted, scans))
    return Audit(repeats, planted, scores, folder)


def structure_values(audit: Audit, cohort_parts: tuple[str, ...], case_parts: tuple[str, ...],
                     every_structure: bool = False) -> pd.DataFrame:
    """One row per audited structure (repeat, unit, kind, scan) with ``label_check`` made of the given parts.

    ``every_structure``: the look-alike parts count for every structure, as before the lesion work."""
    rows = []
    for repeat, (cohort, kinds, corrupted, scans) in enumerate(audit.repeats):
        modalities = case_modalities(cohort)
        parts = {p: class_matrix(cohort, p) for p in (*cohort_parts, *case_parts)}
        if every_structure:
            from auvcore.scales import ScoreScale

            z = [ScoreScale.fit(m, "mean", modalities=modalities).class_z(m, modalities).clip(lower=0) for m in parts.values()]
            values = pd.concat(z, keys=range(len(z))).groupby(level=1, sort=False).sum(min_count=1)
        else:
            values = label_check_scores(parts, modalities).values
        for record, kind, classes, scan in zip(cohort, kinds, corrupted, scans):
            if kind not in LABEL_KINDS and kind != "clean":
                continue
            for name, value in values.loc[record.case_id].items():
                if record.class_values("auv").get(name) is None or (kind != "clean" and name not in classes):
                    continue
                rows.append({"repeat": repeat, "unit": f"{record.case_id}/{name}", "kind": kind if kind != "clean" else "clean",
                             "scan": scan, "value": value})
    return pd.DataFrame(rows)


def figures(table: pd.DataFrame, kinds: list[str]) -> dict[str, float]:
    positive = table["kind"] != "clean"
    result = {"label": auroc(table["value"].to_numpy(), positive.to_numpy())}
    for kind in kinds:
        part = table[table["kind"].isin(["clean", kind])]
        result[kind] = auroc(part["value"].to_numpy(), (part["kind"] != "clean").to_numpy())
    return result


def leave_one_source_out(audit: Audit, candidates: tuple[str, ...]) -> tuple[float, float, list[str]]:
    """(held-out AUROC, AUROC of the choice made on every source, the choices per left-out source)."""
    subsets = [s for n in range(len(candidates) + 1) for s in itertools.combinations(candidates, n)]
    tables = {subset: structure_values(audit, COHORT_PARTS, subset) for subset in subsets}
    scans = sorted(next(iter(tables.values()))["scan"].unique())

    def best(mask_of) -> tuple[str, ...]:
        scored = {s: auroc(t.loc[mask_of(t), "value"].to_numpy(), (t.loc[mask_of(t), "kind"] != "clean").to_numpy()) for s, t in tables.items()}
        return max(scored, key=lambda s: (np.nan_to_num(scored[s], nan=-1.0), -len(s)))

    held, chosen = [], []
    for scan in scans:
        subset = best(lambda t: t["scan"] != scan)
        chosen.append(f"{scan}: {' '.join(subset) or '(none)'}")
        held.append(tables[subset][tables[subset]["scan"] == scan])
    pooled = pd.concat(held)
    everything = tables[best(lambda t: t["scan"] == t["scan"])]
    return (auroc(pooled["value"].to_numpy(), (pooled["kind"] != "clean").to_numpy()),
            auroc(everything["value"].to_numpy(), (everything["kind"] != "clean").to_numpy()), chosen)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else math.nan


def proposals(audit: Audit, manifest: Path) -> pd.DataFrame:
    """Per planted label corruption: Dice of the corrupted label and of the accepted proposal to the clean label."""
    specs = {s.case_id: s for s in discover_cases(manifest)}
    rows = []
    for row in audit.planted.itertuples():
        if row.kind not in LABEL_KINDS:
            continue
        spec = specs[row.source]
        value = int(str(row.classes).split(" ")[0])
        clean = sitk.GetArrayFromImage(sitk.ReadImage(str(spec.label))) == value
        label = Path(row.label) if Path(row.label).exists() else audit.folder.parent / row.label  # relative to where it ran
        corrupted = sitk.GetArrayFromImage(sitk.ReadImage(str(label))) == value
        try:
            after = {rule: _dice(sitk.GetArrayFromImage(proposed_label(audit.scores, row.case_id, [spec.name_of(value)], rule).image) == value, clean)
                     for rule in PROPOSAL_RULES}
        except InputError:
            continue  # scored without the probe
        rows.extend({"kind": row.kind, "magnitude": row.magnitude, "rule": rule, "before": _dice(corrupted, clean), "after": dice}
                    for rule, dice in after.items())
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audit", type=Path, help="the folder of auv audit --lesion-sizes")
    parser.add_argument("manifest", type=Path, help="the audited manifest (its source column names each case's patient)")
    parser.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out choice (it scores every subset)")
    args = parser.parse_args()
    audit = read_audit(args.audit, args.manifest)
    kinds = [k for k in LABEL_KINDS if k in set(audit.planted["kind"])]
    now = structure_values(audit, COHORT_PARTS, CASE_PARTS)
    specs = discover_cases(args.manifest)
    corrupted = now[now["kind"] != "clean"]
    print(f"{len(corrupted)} corrupted structures ({corrupted['scan'].nunique()} sources) against {(now['kind'] == 'clean').sum()} "
          f"clean ones over {len(audit.repeats)} repeats; {len(specs)} cases from {len({s.source for s in specs})} sources "
          f"(patients) and {len({str(s.image).split('_z')[0] for s in specs})} scans")
    print("per kind: " + ", ".join(f"{k} {int((corrupted['kind'] == k).sum())}" for k in kinds))
    rows = {"label_check before (six look-alike parts, every structure)": structure_values(audit, COHORT_PARTS, (), every_structure=True),
            "label_check now": now,
            "look-alike parts alone (where look-alikes)": structure_values(audit, COHORT_PARTS, ()),
            "case-intrinsic parts alone": structure_values(audit, (), CASE_PARTS)}
    rows.update({f"  {part}": structure_values(audit, (), (part,)) for part in CASE_PARTS})
    table = pd.DataFrame({name: figures(values, kinds) for name, values in rows.items()}).T
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print("\nStructures, AUROC (0.5 = chance):")
        print(table.to_string())
        if not args.no_loso:
            held, everything, chosen = leave_one_source_out(audit, CASE_PARTS)
            print(f"\nleave-one-source-out: label_check with the case-intrinsic parts chosen without each source: {held:.3f} "
                  f"(chosen on every source: {everything:.3f})")
            print("\n".join(f"  {line}" for line in chosen))
        proposed = proposals(audit, args.manifest)
        if len(proposed):
            proposed = proposed.assign(closer=proposed["after"] > proposed["before"], worse=proposed["after"] < proposed["before"])
            summary = proposed.groupby(["rule", "kind"]).agg(n=("after", "size"), closer=("closer", "mean"), worse=("worse", "mean"),
                                                             before=("before", "median"), after=("after", "median"))
            print("\nProposed corrections by rule (model: the model's outline; targeted: the label less the parts the model's mask "
                  "does not touch; edge: the label moved onto the image's edge): share closer to the clean label than the corrupted label, share further from it, median Dice to "
                  "the clean label before (corrupted) and after accepting the proposal:")
            print(summary.to_string())
            for rule, part in proposed.groupby("rule"):
                boundary = part[part["kind"].isin(["dilate", "erode", "shift"])]
                print(f"{rule}: all kinds {part['closer'].mean():.2f} closer, {part['worse'].mean():.2f} further ({len(part)}); "
                      f"dilations, erosions and shifts {boundary['closer'].mean():.2f} closer, {boundary['worse'].mean():.2f} further ({len(boundary)})")

if __name__ == "__main__":
    main()
