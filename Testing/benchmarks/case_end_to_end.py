"""One whole real case end to end with LiteMedSAM, the time split into I/O, encoder, decoder and spectrum.

Usage: python Testing/benchmarks/case_end_to_end.py [--case ct_full_model] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

from auvcore.cohort import CaseScorer, ScoreSettings
from auvcore.datasets import discover_cases
from auvcore.sample_data import fetch_sample_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ct_full_model")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    specs = {s.case_id: s for s in discover_cases(fetch_sample_cohort("Testing/data/sample_cohort"))}
    spec = specs[args.case]
    scorer = CaseScorer(ScoreSettings(device=args.device))
    start = time.perf_counter()
    _ = scorer.backend
    load = time.perf_counter() - start
    key, image_hash = scorer.case_key(spec)
    record = scorer.score(spec, key, image_hash)
    t = record["timings"]
    boxes = sum(c["rows"] for c in record["classes"])
    print(f"case {spec.case_id}: {len(record['classes'])} classes, {boxes} boxes, {record['slices_encoded']} slices encoded, S = {record['S']:.4f}")
    print(f"model load {load:.1f} s | io {t['io']:.2f} s | encoder {t['encoder']:.1f} s ({t['encoder'] / max(record['slices_encoded'], 1):.2f} s/slice) | "
          f"decoder {t['decoder']:.1f} s ({t['decoder'] / max(boxes, 1):.3f} s/box) | spectrum {t['spectrum']:.2f} s | total {t['total']:.1f} s")


if __name__ == "__main__":
    main()
