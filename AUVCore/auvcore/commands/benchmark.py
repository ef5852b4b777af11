"""``auv benchmark-curation``: does filtering (or DUO) give a better model on this cohort? (:mod:`auvcore.benchmark.curation`)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..datasets import discover_cases
from .audit import kinds_argument, magnitude_argument
from .train import fraction_argument, parse_in_plane_spacing
from ..duo.config import DUO_FORMS
from ..scales import AGGREGATES


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers, got {text!r}") from None


def _filters(text: str) -> tuple[str, ...]:
    from ..benchmark.settings import split_filter
    from ..scorers.registry import SCORERS

    filters = tuple(f.strip() for f in text.split(",") if f.strip())
    for name in filters:
        try:
            scorer, _ = split_filter(name, "paper")
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if scorer not in SCORERS:
            raise argparse.ArgumentTypeError(f"filter {name!r}: unknown scorer {scorer!r}; choose from {', '.join(SCORERS)}")
    return filters


def _duo_forms(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return DUO_FORMS
    forms = () if text.strip() == "none" else tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in forms if f not in DUO_FORMS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown DUO form(s) {', '.join(unknown)}; choose from {', '.join(DUO_FORMS)}, 'all' or 'none'")
    return forms


def run(args: argparse.Namespace) -> int:
    from ..benchmark.curation import BenchmarkSettings, run_and_report, sensitivity

    settings = BenchmarkSettings(
        rate=args.rate, keep=args.keep, test_fraction=args.test_fraction, split=args.split, seeds=args.seeds,
        filters=args.filters, aggregate=args.aggregate, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, base_filters=args.base_filters, duo_form=args.duo_form, device=args.device,
        classes=tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None,
        batch=args.batch, in_plane_spacing=args.in_plane_spacing, lr=args.lr, kinds=args.kinds, magnitudes=dict(args.magnitude), plant_seed=args.plant_seed, duo_forms=args.duo_forms, duo_warmup=args.duo_warmup, oof_folds=args.oof_folds,
    )
    try:
        summary = run_and_report(discover_cases(args.dataset), args.out, settings)
    except InterruptedError as stopped:
        print(f"auv benchmark-curation: {stopped}", file=sys.stderr)
        return 130
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"benchmark: {sensitivity(summary)}")
    print(f"wrote {Path(args.out) / 'benchmark.csv'}, {Path(args.out) / 'correlations.csv'} and {Path(args.out) / 'benchmark.html'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..benchmark.settings import BenchmarkSettings as DEFAULTS

    parser = subparsers.add_parser("benchmark-curation", help="plant label errors in the training cases, filter, train, test on clean labels",
                                   description="Does curation give a better model? Arms: noisy, oracle, random, filter:<scorer>, duo, duo+filter. "
                                               "Also: how each score follows the noisy model's Dice on the test cases (correlations.csv).")
    parser.add_argument("dataset", help="a labelled cohort (nnU-Net folder, Decathlon task, folder or manifest)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rate", type=float, default=DEFAULTS.rate, help="share of training cases corrupted (default: %(default)s)")
    parser.add_argument("--keep", type=float, default=DEFAULTS.keep, help="the filters' keep fraction (default: %(default)s, the paper's best)")
    parser.add_argument("--test-fraction", type=float, default=DEFAULTS.test_fraction)
    parser.add_argument("--split", choices=("ordered", "random"), default=DEFAULTS.split,
                        help="ordered: the manifest's last cases are the test ones (slabs stay apart); default: %(default)s")
    parser.add_argument("--seeds", type=_seeds, default=DEFAULTS.seeds, help="training seeds (default: 0,1,2)")
    parser.add_argument("--filters", type=_filters, default=DEFAULTS.filters,
                        help=f"scorers to filter by, each as SCORER or SCORER@AGGREGATE (default: {','.join(DEFAULTS.filters)})")
    parser.add_argument("--oof-folds", type=int, default=DEFAULTS.oof_folds,
                        help="folds of the out-of-fold models that filter:cleanlab reads (default: %(default)s)")
    parser.add_argument("--aggregate", choices=AGGREGATES, default=DEFAULTS.aggregate, help="the filters' case scores, for a filter without @AGGREGATE (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=DEFAULTS.steps_per_epoch)
    parser.add_argument("--base-filters", type=int, default=DEFAULTS.base_filters)
    parser.add_argument("--in-plane-spacing", type=parse_in_plane_spacing, metavar="MM[,MM]",
                        help="in-plane spacing to train at (default: the data's); coarser is faster")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="initial learning rate (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=DEFAULTS.batch, help="slices per training step (default: the 2d plan's)")
    parser.add_argument("--kinds", type=kinds_argument, help="label corruption kinds to plant (default: every label kind of auv audit)")
    parser.add_argument("--magnitude", type=magnitude_argument, action="append", default=[], metavar="KIND=VALUE",
                        help="a corruption's magnitude, as in auv audit (repeatable)")
    parser.add_argument("--plant-seed", type=int, default=DEFAULTS.plant_seed, help="seed of the planted cases (default: %(default)s)")
    parser.add_argument("--duo-form", choices=DUO_FORMS, default=DEFAULTS.duo_form, help="the form of duo+filter (default: %(default)s)")
    parser.add_argument("--duo-warmup", type=fraction_argument("--duo-warmup"), default=DEFAULTS.duo_warmup, metavar="FRACTION",
                        help="share of a DUO arm's epochs before the noise head purifies the labels (default: %(default)s)")
    parser.add_argument("--duo-forms", type=_duo_forms, default=DEFAULTS.duo_forms,
                        help="the DUO forms trained as arms duo:<form>: comma-separated, 'all' or 'none' (default: --duo-form's)")
    parser.add_argument("--classes", help="comma-separated classes to train (default: all)")
    parser.add_argument("--device", default=DEFAULTS.device)
    parser.set_defaults(func=run)
