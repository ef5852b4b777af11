"""One whole real case end to end with LiteMedSAM, the time split into I/O, encoder, decoder and spectrum.

Usage: python Testing/benchmarks/case_end_to_end.py [--case ct_full_model] [--device cpu] [--compile]

With --compile the case is scored twice in one run, plain eager and with
``torch.compile`` (after its one-off compilation on a warm-up case), and the
speed ratio and the largest per-class change in S are printed.
"""

from __future__ import annotations

import argparse
import time

from auvcore.cohort import CaseScorer, ScoreSettings
from auvcore.datasets import CaseSpec, discover_cases
from auvcore.results import CaseRecord
from auvcore.sample_data import fetch_sample_cohort


def score(spec: CaseSpec, settings: ScoreSettings, warm_up: CaseSpec | None = None) -> CaseRecord:
    scorer = CaseScorer(settings)
    start = time.perf_counter()
    _ = scorer.backend
    if warm_up is not None:
        scorer.score(warm_up, "warm-up")
    prepare = time.perf_counter() - start
    key, image_hash = scorer.case_key(spec)
    record, _, _ = scorer.score(spec, key, image_hash + "-fresh")  # a fresh image key: the encoder runs
    t = record.timings
    boxes = sum(c.rows for c in record.classes)
    label = "compiled" if settings.compile else "eager"
    print(f"[{label}] case {spec.case_id}: {len(record.classes)} classes, {boxes} boxes, {record.slices_encoded} slices encoded, S = {record.S:.6f}")
    print(f"[{label}] model load{' + compile' if warm_up else ''} {prepare:.1f} s | io {t['io']:.2f} s | encoder {t['encoder']:.1f} s "
          f"({t['encoder'] / max(record.slices_encoded, 1):.2f} s/slice) | decoder {t['decoder']:.1f} s ({t['decoder'] / max(boxes, 1):.3f} s/box) | "
          f"spectrum {t['spectrum']:.2f} s | total {t['total']:.1f} s")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ct_full_model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="also score with torch.compile and compare")
    args = parser.parse_args()
    specs = {s.case_id: s for s in discover_cases(fetch_sample_cohort("Testing/data/sample_cohort"))}
    spec = specs[args.case]
    eager = score(spec, ScoreSettings(device=args.device))
    if not args.compile:
        return
    compiled = score(spec, ScoreSettings(device=args.device, compile=True), warm_up=specs["mr"])
    ratio = eager.timings["total"] / compiled.timings["total"]
    dec_ratio = eager.timings["decoder"] / compiled.timings["decoder"]
    enc_ratio = eager.timings["encoder"] / compiled.timings["encoder"]
    diffs = [abs(a.S - b.S) for a, b in zip(eager.classes, compiled.classes) if a.S is not None]
    print(f"compiled vs eager: {ratio:.2f}x per case (encoder {enc_ratio:.2f}x, decoder {dec_ratio:.2f}x), max per-class |dS| = {max(diffs):.1e}")


if __name__ == "__main__":
    main()
