"""The same cohort scored on every CPU runtime, thread count and forced instruction set: how far the values move,
and whether what a user acts on moves at all.

Usage: python Testing/benchmarks/reproducibility.py WORK [--threads 1 2 4] [--runtimes torch openvino onnxruntime]
                                                     [--manifest M]

Default cohort: the tests' small real cohort (6 CT slices labelled by TotalSegmentator's full and fast models,
5 MR slices), cut from the sample volumes into WORK. Each configuration runs ``auv score --scorers all`` in a
fresh process (threads through ``OMP_NUM_THREADS``); torch at 2 threads also runs with its instruction sets
forced down: ``ATEN_CPU_CAPABILITY=default`` (torch's own kernels without AVX2), ``ONEDNN_MAX_CPU_ISA=SSE41``
(oneDNN's convolutions) and ``MKL_CBWR=COMPATIBLE`` (MKL's matrix products on its reproducible path). The
reference is torch at 2 threads. Printed per configuration: the largest per-class |ΔS|, the largest relative
change of any cohort value in ``results.csv``, and whether the rankings, the review queues and the filter
decisions (:func:`auvcore.review.decisions.decisions`) are identical. Rerunning reuses finished configurations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from auvcore.review.decisions import decisions
from auvcore.sample_data import fetch_sample_cohort

SAMPLE = Path(__file__).resolve().parents[2] / "Testing" / "data" / "sample_cohort"
CT_CLASSES = {"liver": 5, "spleen": 1, "kidney_right": 2, "stomach": 6}
#: Forcing torch's instruction sets down: what differs between CPUs with and without a vector unit.
FORCED_ISA = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}


def _crop(image: Path, out: Path, slices: slice, keep: dict[str, int] | None = None) -> None:
    cropped = sitk.ReadImage(str(image))[:, :, slices]
    if keep is not None:
        values = sitk.GetArrayFromImage(cropped)
        kept = sitk.GetImageFromArray(np.where(np.isin(values, list(keep.values())), values, 0).astype(values.dtype))
        kept.CopyInformation(cropped)
        cropped = kept
    sitk.WriteImage(cropped, str(out))


def small_cohort(folder: Path) -> Path:
    """The tests' small cohort (AUVCore/tests/conftest.py), cut from the sample volumes into ``folder``."""
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return manifest
    sample = fetch_sample_cohort(SAMPLE).parent
    folder.mkdir(parents=True, exist_ok=True)
    _crop(sample / "example_ct_sm.nii.gz", folder / "ct.nii.gz", slice(12, 18))
    _crop(sample / "example_seg.nii.gz", folder / "ct_full.nii.gz", slice(12, 18), CT_CLASSES)
    _crop(sample / "example_seg_fast.nii.gz", folder / "ct_fast.nii.gz", slice(12, 18), CT_CLASSES)
    _crop(sample / "example_mr_sm.nii.gz", folder / "mr.nii.gz", slice(8, 13))
    _crop(sample / "example_seg_mr.nii.gz", folder / "mr_seg.nii.gz", slice(8, 13), {"liver": 5, "spleen": 1})
    (folder / "labels.json").write_text(json.dumps({"labels": {"background": 0, **CT_CLASSES}}))
    manifest.write_text("case_id,image,label,label_names\nct_full,ct.nii.gz,ct_full.nii.gz,labels.json\n"
                        "ct_fast,ct.nii.gz,ct_fast.nii.gz,labels.json\nmr,mr.nii.gz,mr_seg.nii.gz,labels.json\n")
    return manifest


def score(manifest: Path, out: Path, runtime: str, threads: int, env: dict[str, str]) -> Path:
    if not (out / "results.csv").is_file():
        command = [sys.executable, "-m", "auvcore.cli", "score", str(manifest), "--out", str(out), "--device", "cpu",
                   "--no-progress", "--scorers", "all", "--runtime", runtime]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads), **env})
    return out


def class_s(folder: Path) -> dict[tuple[str, str], float]:
    values = {}
    for path in sorted((folder / "cases").glob("*.json")):
        record = json.loads(path.read_text())
        for entry in record["classes"]:
            values[(record["case_id"], entry["name"])] = np.nan if entry["S"] is None else entry["S"]
    return values


def largest_relative_change(a: pd.DataFrame, b: pd.DataFrame) -> float:
    numeric = a.select_dtypes("number").columns
    x, y = a[numeric].to_numpy(dtype=float), b[numeric].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nanmax(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runtimes", nargs="+", default=["torch", "openvino", "onnxruntime"])
    parser.add_argument("--manifest", type=Path, help="another cohort (default: the tests' small cohort)")
    args = parser.parse_args()
    manifest = args.manifest or small_cohort(args.work / "cohort")
    configurations = {(runtime, threads, ""): {} for runtime in args.runtimes for threads in args.threads}
    configurations[("torch", 2, "ISA forced down")] = FORCED_ISA
    folders = {}
    for (runtime, threads, note), env in configurations.items():
        name = f"{runtime}-{threads}" + ("-isa" if note else "")
        folders[(runtime, threads, note)] = score(manifest, args.work / name, runtime, threads, env)
    reference = folders[("torch", 2, "")]
    ref_s, ref_table, ref_decisions = class_s(reference), pd.read_csv(reference / "results.csv"), decisions(reference)
    print(f"{len(ref_s)} structures of {len(ref_table)} cases; reference: torch at 2 threads")
    print("| runtime | threads | note | max per-class abs ΔS | max relative Δ of a cohort value | rankings, queues, filters |")
    print("|---|---|---|---|---|---|")
    for (runtime, threads, note), folder in folders.items():
        s = class_s(folder)
        ds = max(abs(s[k] - ref_s[k]) for k in ref_s if np.isfinite(ref_s[k]))
        changed = [name for name, order in decisions(folder).items() if order != ref_decisions.get(name)]
        same = "identical" if not changed else "differ: " + ", ".join(changed)
        print(f"| {runtime} | {threads} | {note} | {ds:.1e} | {largest_relative_change(pd.read_csv(folder / 'results.csv'), ref_table):.1e} | {same} |")


if __name__ == "__main__":
    main()
