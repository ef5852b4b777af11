"""``auv audit``: plant errors in a copy of a cohort and measure which score finds which.

Example (shell):
    auv audit my_dataset --out audit            # 30% of the cases corrupted, every scorer
    auv audit manifest.csv --out audit --repeats 3 --magnitude dilate=1 --kinds dilate,erode,shift
    auv audit lesions/manifest.csv --out lesion_audit --lesion-sizes   # 1-3 voxel errors, a missed end slice, a blob
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..audit.settings import KINDS, LESION_KINDS, LESION_MAGNITUDES, MAGNITUDES, AuditSettings, Magnitude
from ..datasets import discover_cases
from ..errors import InputError
from ..results.writer_lock import writer_lock
from .score import add_scoring_options, settings_from


def kinds_argument(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    return kinds


def magnitude_argument(text: str) -> tuple[str, Magnitude]:
    """``kind=value``, or ``kind=low-high`` for a range each planted case draws its magnitude from.

    Example:
        >>> magnitude_argument("dilate=1-3"), magnitude_argument("blur=0.5")
        (('dilate', (1.0, 3.0)), ('blur', 0.5))
    """
    kind, _, value = text.partition("=")
    if kind not in MAGNITUDES:
        raise argparse.ArgumentTypeError(f"--magnitude takes kind=value with kind in {', '.join(KINDS)}, got {text!r}")
    low, dash, high = value.partition("-")
    try:
        if dash:
            if float(low) > float(high):
                raise argparse.ArgumentTypeError(f"--magnitude {kind}= takes a range low-high, got {value!r}")
            return kind, (float(low), float(high))
        return kind, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--magnitude {kind}= needs a number or a range low-high, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..audit.detector import DETECTOR_JSON
    from ..audit.metrics import TOP_STRUCTURES, structure_counts, structure_summary
    from ..audit.runner import STRUCTURE_FIGURES_CSV, run_audit, summary

    settings = settings_from(args)
    if settings.mode != "classwise":
        raise InputError(args.target, "the audit scores label maps: it needs --mode classwise")
    kinds = args.kinds or (LESION_KINDS if args.lesion_sizes else KINDS)
    magnitudes = {**(LESION_MAGNITUDES if args.lesion_sizes else {}), **dict(args.magnitude)}
    audit = AuditSettings(args.fraction, kinds, magnitudes, args.repeats, args.seed)
    with writer_lock(args.out):  # one audit at a time in a folder
        result = run_audit(discover_cases(args.target), args.out, settings, audit, progress=not args.no_progress, fit=args.fit)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        if not result.structures.empty:
            print(f"Structures: corrupted against those of clean cases, on each scorer's per-class z "
                  f"(AUROC, 0.5 = chance; P@{TOP_STRUCTURES}: share corrupted among the {TOP_STRUCTURES} most suspect):")
            print("\n".join(f"  {line}" for line in structure_counts(result.structures)))
            print(structure_summary(result.structures).to_string())
        print("\nAUROC, corrupted against clean cases (0.5 = chance):")
        print(summary(result.figures, "case").to_string())
    if result.held_out:
        print("\ndetector on held-out structures (AUROC; fitted without the kind or the case it is tested on; "
              "unfitted_label_check: the fixed sum on the same structures, the figures to beat):")
        for name, value in result.held_out.items():
            print(f"  {name}: {value:.3f}")
        print(f"detector: {Path(args.out) / DETECTOR_JSON} (auv score --detector)")
    print(f"\nfigures: {args.out}/{STRUCTURE_FIGURES_CSV} (structures), {args.out}/audit.csv (cases and structures, "
          f"with precision at the top 10% and 20%); page: {args.out}/audit.html")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="plant errors in a copy of a cohort and measure which score finds them",
        description="Copy DATASET's cases, plant label and image corruptions in a seeded subset, score clean and "
        "corrupted cases with every scorer, and report per scorer and kind the AUROC and precision at the top 20 "
        "structures (corrupted structures against those of clean cases), then AUROC and precision at the top 10%/20% of cases. "
        "Magnitudes: " + "; ".join(f"{k}={v} ({text})" for k, (v, text) in MAGNITUDES.items()),
    )
    parser.add_argument("target", metavar="DATASET", help="nnU-Net/Decathlon folder, images/+labels/ folder, flat folder or CSV manifest")
    parser.add_argument("--out", required=True, help="audit folder (planted copies, scores, audit_structures.csv, audit.csv, audit.html)")
    parser.add_argument("--fraction", type=float, default=0.3, help="share of cases corrupted per repeat (default: 0.3)")
    parser.add_argument("--kinds", type=kinds_argument, default=None, help=f"comma-separated kinds (default: all: {','.join(KINDS)})")
    parser.add_argument("--magnitude", type=magnitude_argument, action="append", default=[], metavar="KIND=VALUE",
                        help="override a default magnitude, or give a range low-high each planted case draws from (repeatable)")
    parser.add_argument("--lesion-sizes", action="store_true",
                        help="errors of the size lesion labels have: kinds " + ",".join(LESION_KINDS) + " (unless --kinds), magnitudes "
                        + ", ".join(f"{k}={'-'.join(f'{v:g}' for v in m) if isinstance(m, tuple) else f'{m:g}'}" for k, m in LESION_MAGNITUDES.items())
                        + " (unless --magnitude)")
    parser.add_argument("--repeats", type=int, default=1, help="independent draws of the corrupted subset (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit", action="store_true", help="also fit a structure detector on the planted corruptions (OUT/detector.json), "
                        "judged leave-one-kind-out and leave-one-case-out")
    add_scoring_options(parser, default_scorers="all")
    parser.set_defaults(func=run)
