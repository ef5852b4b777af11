"""``auv score``: score one case or a cohort."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..backends import available_backends
from ..cohort import CaseScorer, ScoreSettings, score_cohort, scoring_identity
from ..datasets import CaseSpec, discover_cases, read_label_names
from ..imaging import DEFAULT_CT_WINDOW
from ..reference import load_reference


def add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs a backbone."""
    parser.add_argument("--backbone", default="litemedsam", choices=available_backends(), help="foundation model (default: litemedsam, embedded)")
    parser.add_argument("--checkpoint", help="weights file (required for medsam2; a fine-tuned LiteMedSAM otherwise)")
    parser.add_argument("--mode", default="classwise", choices=["classwise", "image"], help="classwise: box prompts from the labels; image: label-free")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--modality", default="auto", choices=["auto", "ct", "mr"], help="intensity normalisation (default: auto-detect)")
    parser.add_argument("--ct-window", nargs=2, type=float, default=DEFAULT_CT_WINDOW, metavar=("LOW", "HIGH"), help="CT window in HU (default: -160 240)")
    parser.add_argument("--max-memory", type=float, default=8.0, metavar="GIB", help="refuse cases whose features exceed this (default: 8)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model: a one-off compilation, then faster scoring (cohorts)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_from(args: argparse.Namespace) -> ScoreSettings:
    return ScoreSettings(
        backbone=args.backbone,
        checkpoint=args.checkpoint,
        mode=args.mode,
        modality=args.modality,
        ct_window=tuple(args.ct_window),
        device=args.device,
        max_feature_gib=args.max_memory,
        compile=args.compile,
    )


def _specs(args: argparse.Namespace) -> list[CaseSpec]:
    target = Path(args.target)
    if args.label or (target.is_file() and target.suffix.lower() != ".csv"):
        names = read_label_names(Path(args.label_names)) if args.label_names else {}
        case_id = args.case_id or target.name.split(".")[0]
        return [CaseSpec(case_id, target.resolve(), Path(args.label).resolve() if args.label else None, names)]
    return discover_cases(target)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    reference = None
    if args.reference:
        saved = load_reference(args.reference)
        saved.check_compatible(settings.backbone, settings.mode, scoring_identity(settings))
        reference = saved.scale
    specs = _specs(args)
    table = score_cohort(specs, args.out, settings, reference=reference, scorer=CaseScorer(settings), progress=not args.no_progress)
    failed = table[table["status"] == "error"]
    for row in failed.itertuples():
        print(f"error: {row.case_id}: {row.error}")
    print(f"scored {len(table) - len(failed)} of {len(table)} cases; results in {Path(args.out) / 'results.csv'}")
    return 1 if len(failed) else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score one case or a cohort",
        description="Score IMAGE (with --label) or a DATASET (nnU-Net/Decathlon folder, images/+labels/ folder, flat folder, or CSV manifest).",
    )
    parser.add_argument("target", metavar="IMAGE|DATASET")
    parser.add_argument("--label", help="label map of IMAGE (one-case scoring)")
    parser.add_argument("--label-names", help="dataset.json-style file naming the classes of --label")
    parser.add_argument("--case-id", help="case id for one-case scoring (default: the image's name)")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--reference", help="reference.json of a scored cohort: place the cases on its AUV scale")
    add_scoring_options(parser)
    parser.set_defaults(func=run)
