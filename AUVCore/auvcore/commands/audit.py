"""``auv audit``: plant errors in a copy of a cohort and measure which score finds which.

Example (shell):
    auv audit my_dataset --out audit            # 30% of the cases corrupted, every scorer
    auv audit manifest.csv --out audit --repeats 3 --magnitude dilate=1 --kinds dilate,erode,shift
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..audit import KINDS, MAGNITUDES, AuditSettings, run_audit, summary
from ..datasets import discover_cases
from ..errors import InputError
from ..results import STRUCTURES_CSV, json_number
from ..results.structures import structure_scorers
from .score import add_scoring_options, settings_from


def kinds_argument(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    return kinds


def magnitude_argument(text: str) -> tuple[str, float]:
    kind, _, value = text.partition("=")
    if kind not in MAGNITUDES:
        raise argparse.ArgumentTypeError(f"--magnitude takes kind=value with kind in {', '.join(KINDS)}, got {text!r}")
    try:
        return kind, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--magnitude {kind}= needs a number, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings.mode != "classwise":
        raise InputError(args.target, "the audit scores label maps: it needs --mode classwise")
    audit = AuditSettings(args.fraction, args.kinds, dict(args.magnitude), args.repeats, args.seed)
    figures = run_audit(discover_cases(args.target), args.out, settings, audit, progress=not args.no_progress)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        print("AUROC, corrupted against clean cases (0.5 = chance):")
        print(summary(figures, "case").to_string())
        if (figures["level"] == "class").any():
            print("\nAUROC, corrupted structures against structures of clean cases (per-class z-scores):")
            print(summary(figures, "class").to_string())
    print(f"\nfigures: {args.out}/audit.csv (with precision at the top 10% and 20%); page: {args.out}/audit.html")
    if args.fit:
        _fit(Path(args.out), settings.scorers, audit)
    return 0


def _fit(out: Path, scorers: tuple[str, ...], audit: AuditSettings) -> None:
    """Fit the detector on the audited structures, judge it on held-out kinds and cases, save it."""
    from ..audit.detector import DETECTOR_JSON, fit_detector, held_out_figures, save_detector

    structures = pd.read_csv(out / STRUCTURES_CSV)
    per_structure = [s for s in structure_scorers(scorers) if f"{s}_z" in structures.columns]
    corrupted = structures["kind"] != "clean"
    if not corrupted.any():
        raise InputError(out / STRUCTURES_CSV, "holds no corrupted structure to fit a detector on (plant label kinds)")
    figures = held_out_figures(structures, structures["kind"], structures["source"], per_structure)
    source = {"audit": str(out.resolve()), "structures": int(len(structures)), "corrupted": int(corrupted.sum()),
              "kinds": list(audit.kinds), "seed": audit.seed, "repeats": audit.repeats,
              "held_out_auroc": {name: json_number(value) for name, value in figures.items()}}  # None where undefined
    save_detector(out / DETECTOR_JSON, fit_detector(structures, corrupted, per_structure, source))
    print("\ndetector on held-out structures (AUROC; fitted without the kind or the case it is tested on):")
    for name, value in figures.items():
        print(f"  {name}: {value:.3f}")
    print(f"detector: {out / DETECTOR_JSON} (auv score --detector)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="plant errors in a copy of a cohort and measure which score finds them",
        description="Copy DATASET's cases, plant label and image corruptions in a seeded subset, score clean and "
        "corrupted cases with every scorer, and report AUROC and precision at the top 10%/20% per scorer and kind. "
        "Magnitudes: " + "; ".join(f"{k}={v} ({text})" for k, (v, text) in MAGNITUDES.items()),
    )
    parser.add_argument("target", metavar="DATASET", help="nnU-Net/Decathlon folder, images/+labels/ folder, flat folder or CSV manifest")
    parser.add_argument("--out", required=True, help="audit folder (planted copies, scores, audit.csv, audit.html)")
    parser.add_argument("--fraction", type=float, default=0.3, help="share of cases corrupted per repeat (default: 0.3)")
    parser.add_argument("--kinds", type=kinds_argument, default=KINDS, help=f"comma-separated kinds (default: all: {','.join(KINDS)})")
    parser.add_argument("--magnitude", type=magnitude_argument, action="append", default=[], metavar="KIND=VALUE", help="override a default magnitude (repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="independent draws of the corrupted subset (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit", action="store_true", help="also fit a structure detector on the planted corruptions (OUT/detector.json), "
                        "judged leave-one-kind-out and leave-one-case-out")
    add_scoring_options(parser, default_scorers="all")
    parser.set_defaults(func=run)
