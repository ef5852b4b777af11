"""``auv explain`` of a 30-slice class on the CPU, the time split into model load, model pass and page; and the feature cache's size.

Usage: python Testing/benchmarks/explain_speed.py [--class spleen] [--device cpu] [--results FOLDER]

The target (SPEC of issue 15) is under a minute for a class of <= 30 slices.
With ``--results`` (a folder of ``auv score``), the per-case feature cache
sizes are printed beside each case's JSON size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from auvcore.backends import create_backend
from auvcore.cohort import ScoreSettings
from auvcore.datasets import CaseSpec, read_label_names
from auvcore.explain.cache import cache_bytes
from auvcore.explain.page import write_explain_page
from auvcore.explain.live import compute_class_view
from auvcore.sample_data import fetch_sample_cohort

TARGET_SECONDS = 60.0


def explain_once(class_name: str, device: str) -> None:
    folder = fetch_sample_cohort(Path("Testing/data/sample_cohort")).parent
    spec = CaseSpec("ct_full_model", folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz",
                    read_label_names(folder / "labels_total.json"))
    start = time.perf_counter()
    backend = create_backend("litemedsam", device)
    loaded = time.perf_counter()
    view = compute_class_view(spec, class_name, ScoreSettings(device=device), backend)
    computed = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_explain_page(view, out)
    done = time.perf_counter()
    total = done - start
    print(f"{class_name}: {view.rows} slices, S = {view.S:.6f}")
    print(f"model load {loaded - start:.1f} s | model pass + scorers {computed - loaded:.1f} s | page {done - computed:.1f} s | "
          f"total {total:.1f} s = {total / TARGET_SECONDS:.2f} x the {TARGET_SECONDS:.0f} s target")


def cache_sizes(results: Path) -> None:
    for case_json in sorted((results / "cases").glob("*.json")):
        print(f"{case_json.stem}: feature cache {cache_bytes(case_json) / 2**20:.2f} MiB, case JSON {case_json.stat().st_size / 2**20:.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class", dest="class_name", default="spleen", help="a class of the sample CT (spleen: 30 slices)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results", type=Path, help="a results folder whose feature caches to measure")
    args = parser.parse_args()
    explain_once(args.class_name, args.device)
    if args.results:
        cache_sizes(args.results)


if __name__ == "__main__":
    main()
