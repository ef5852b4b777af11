"""``auv demo``: fetch the real sample cohort and score it with the embedded LiteMedSAM."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cohort import ScoreSettings, score_cohort
from ..datasets import discover_cases
from ..sample_data import fetch_sample_cohort
from .score import warnings_as_lines


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    manifest = fetch_sample_cohort(Path(args.data) if args.data else out / "sample_cohort")
    print(f"sample cohort: {manifest}")
    settings = ScoreSettings(device=args.device)
    with warnings_as_lines():
        table = score_cohort(discover_cases(manifest), out / "results", settings, progress=not args.no_progress)
    shown = table[["case_id", "auv", "S", "status"]].sort_values("auv", ascending=False)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"results: {out / 'results' / 'results.csv'} (per-case JSON in {out / 'results' / 'cases'})")
    return 0 if (table["status"] == "ok").all() else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="score the real sample cohort with the embedded LiteMedSAM")
    parser.add_argument("--out", default="auv-demo", help="folder for the data and results (default: ./auv-demo)")
    parser.add_argument("--data", help="where to keep the sample cohort (default: OUT/sample_cohort)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)
