"""``auv score`` (one case, a cohort, a shard of one, or under torchrun) and ``auv merge``.

Registering the options loads no torch, pandas or scikit-learn (``auv --help`` stays fast):
the scoring code loads when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..backend_registry import available_backends
from ..datasets import CaseSpec, absolute, discover_cases, read_label_names
from ..errors import InputError
from ..imaging import DEFAULT_CT_WINDOW
from ..results import CaseRecord, ResultsFolder, SavedReference, labels_in_use, load_reference, read_case_record, write_case_record
from ..results.corrections import BEFORE_CORRECTION, scores_before_correction
from ..runtime_choices import PRECISIONS, RUNTIMES
from ..scales import AGGREGATES, CohortWarning
from ..scorers.registry import SCORERS, parse_scorers
from .curate import add_original_labels_option

if TYPE_CHECKING:
    import pandas as pd

    from ..cohort import ScoreSettings


def add_scoring_options(parser: argparse.ArgumentParser, default_scorers: str = "auv") -> None:
    """Options shared by every command that runs a backbone."""
    parser.add_argument("--backbone", default="litemedsam", choices=available_backends(), help="foundation model (default: litemedsam, embedded)")
    parser.add_argument("--checkpoint", help="weights file (required for medsam2; a fine-tuned LiteMedSAM otherwise)")
    parser.add_argument("--mode", default="classwise", choices=["classwise", "image"], help="classwise: box prompts from the labels; image: label-free")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--modality", default="auto", choices=["auto", "ct", "mr"], help="intensity normalisation (default: auto-detect)")
    parser.add_argument("--ct-window", nargs=2, type=float, default=DEFAULT_CT_WINDOW, metavar=("LOW", "HIGH"), help="CT window in HU (default: -160 240)")
    parser.add_argument("--max-memory", type=float, default=8.0, metavar="GIB", help="refuse cases whose features exceed this (default: 8)")
    parser.add_argument("--runtime", default="auto", choices=RUNTIMES,
                        help="what runs the model: auto (torch on CUDA, OpenVINO on the CPU), torch, openvino or onnxruntime (CPU); "
                        "exported models are cached in $AUV_CACHE_DIR or ~/.cache/auv (default: auto)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32, or bf16 where the runtime and the CPU/GPU support it (faster, moves S by up to about 1e-2; default: fp32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model: a one-off compilation, then faster scoring (cohorts)")
    parser.add_argument("--scorers", default=default_scorers, type=scorers_argument,
                        help=f"comma-separated scorers beside auv, or 'all' (every one but cleanlab; default: {default_scorers}); "
                        "one results column each: "
                        + ", ".join(SCORERS))
    parser.add_argument("--oof", metavar="FOLDER", help="out-of-fold probabilities of `auv oof`, read by --scorers cleanlab "
                        "(which 'all' leaves out: name it, e.g. --scorers all,cleanlab)")
    parser.add_argument("--aggregate", default="paper", choices=AGGREGATES,
                        help="class values -> case score: paper (sum, as the paper), mean or max of per-class robust z, calibrated (Sidak min-p of per-structure tail probabilities) or fisher (Fisher's method) (default: paper)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def scorers_argument(text: str) -> tuple[str, ...]:
    try:
        return parse_scorers(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def settings_from(args: argparse.Namespace) -> ScoreSettings:
    from ..cohort import runtime_identity

    try:
        settings = _settings(args)
    except InputError:
        raise
    except ValueError as error:
        option = next((o for o in ("precision", "runtime") if o in str(error)), "scorers")
        raise InputError(f"--{option}", str(error)) from None
    try:
        runtime_identity(settings)  # a runtime that cannot run here fails now, not at the first case
    except ValueError as error:
        raise InputError("--runtime", str(error)) from None
    return settings


def _settings(args: argparse.Namespace) -> ScoreSettings:
    from ..cohort import ScoreSettings

    return ScoreSettings(
        backbone=args.backbone,
        checkpoint=args.checkpoint,
        mode=args.mode,
        modality=args.modality,
        ct_window=tuple(args.ct_window),
        device=args.device,
        max_feature_gib=args.max_memory,
        compile=args.compile,
        scorers=args.scorers,  # parsed by argparse, the default too
        aggregate=args.aggregate,
        detector=getattr(args, "detector", None),
        runtime=args.runtime,
        precision=args.precision,
        oof=args.oof,
    )


def _specs(args: argparse.Namespace) -> list[CaseSpec]:
    target = Path(args.target)
    if args.label or (target.is_file() and target.suffix.lower() != ".csv"):
        names = read_label_names(Path(args.label_names)) if args.label_names else {}
        case_id = args.case_id or target.name.split(".")[0]
        return [CaseSpec(case_id, absolute(target), absolute(args.label) if args.label else None, names,
                         absolute(args.label_names) if args.label_names else None)]
    return discover_cases(target)


def _with_corrections(specs: list[CaseSpec], out: str, original: bool) -> tuple[list[CaseSpec], dict[str, dict]]:
    """The cases with the corrected labels saved in OUT (unless ``original``), and what each corrected case's
    record keeps of its scores from before its correction."""
    folder = ResultsFolder(Path(out))
    if not folder.review.exists():
        return specs, {}
    in_use = labels_in_use(folder, {s.case_id: s.label for s in specs}, original=original)
    print(in_use.summary(folder))
    corrected, before = set(in_use.corrected), {}
    for spec in specs:
        if spec.case_id in corrected and folder.case_json(spec.case_id).exists():
            kept = scores_before_correction(read_case_record(folder.case_json(spec.case_id)), in_use.path(spec.case_id))
            if kept is not None:
                before[spec.case_id] = kept
    return [CaseSpec(s.case_id, s.image, in_use.path(s.case_id), s.class_names) if s.case_id in corrected else s
            for s in specs], before


def _keep_before(records: list[CaseRecord], before: dict[str, dict], out: str) -> list[CaseRecord]:
    """Records of corrected cases with their scores from before the correction (written at once)."""
    kept = []
    for record in records:
        if record.ok and record.case_id in before and record.extra.get(BEFORE_CORRECTION) != before[record.case_id]:
            record = record.updated(extra={**record.extra, BEFORE_CORRECTION: before[record.case_id]})
            write_case_record(ResultsFolder(Path(out)).case_json(record.case_id), record)
        kept.append(record)
    return kept


def _reference(args: argparse.Namespace, settings: ScoreSettings) -> SavedReference | None:
    if not args.reference:
        return None
    from ..cohort import scoring_identity

    saved = load_reference(args.reference)
    saved.check_compatible(settings.backbone, settings.mode, scoring_identity(settings))
    if settings.aggregate != saved.aggregate:
        raise InputError(saved.path, f"was made with --aggregate {saved.aggregate}, not {settings.aggregate}")
    return saved


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Show the library's cohort warnings (e.g. differing class sets) once each, as ``warning:`` lines on stdout,
    beside the results they concern (the Slicer module's job log and a redirected run keep them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CohortWarning)
        yield
    said = set()
    for warning in caught:
        if not issubclass(warning.category, CohortWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        elif str(warning.message) not in said:
            said.add(str(warning.message))
            print(f"warning: {warning.message}", flush=True)


def _finalise(records: list[CaseRecord], out: str, settings: ScoreSettings, saved: SavedReference | None) -> pd.DataFrame:
    from ..cohort import normalise_cohort, place_on_reference

    with warnings_as_lines():
        if saved is None:
            return normalise_cohort(records, out, settings)
        return place_on_reference(records, out, settings, saved)


def _report(table: pd.DataFrame, out: str) -> int:
    failed = table[table["status"] == "error"]
    for row in failed.itertuples():
        print(f"error: {row.case_id}: {row.error}")
    print(f"scored {len(table) - len(failed)} of {len(table)} cases; results in {ResultsFolder(Path(out)).results_csv}")
    return 1 if len(failed) else 0


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 0-based.

    Example:
        >>> parse_shard("1/4")
        (1, 4)
    """
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return index, count


def _torchrun_shard() -> tuple[int, int] | None:
    """(rank, world size) when started by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def run(args: argparse.Namespace) -> int:
    from ..cohort import CaseScorer, load_records, score_cases

    settings = settings_from(args)
    reference = _reference(args, settings)
    specs, before = _with_corrections(_specs(args), args.out, args.original_labels)
    scorer = CaseScorer(settings)
    folder = ResultsFolder(Path(args.out))
    if args.shard:
        with folder.writer_lock(shard=args.shard):
            score_cases(specs, args.out, settings, scorer, progress=not args.no_progress, shard=args.shard)
        print(f"shard {args.shard[0]}/{args.shard[1]} done; when every shard is, run: auv merge {args.target} --out {args.out}")
        return 0
    ranks = _torchrun_shard()
    if ranks is None:
        with folder.writer_lock():
            records = _keep_before(score_cases(specs, args.out, settings, scorer, progress=not args.no_progress), before,
                                   args.out)
            return _report(_finalise(records, args.out, settings, reference), args.out)
    # torchrun: each rank scores its shard into the shared folder; rank 0 merges once all are done.
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        with folder.writer_lock(shard=ranks):
            score_cases(specs, args.out, settings, scorer, progress=False, shard=ranks)
        dist.barrier()
        if ranks[0] != 0:
            return 0
        with folder.writer_lock():
            records = _keep_before(load_records(specs, args.out, settings), before, args.out)
            return _report(_finalise(records, args.out, settings, reference), args.out)
    finally:
        dist.destroy_process_group()


def merge(args: argparse.Namespace) -> int:
    from ..cohort import load_records

    settings = settings_from(args)
    folder = ResultsFolder.find(args.out)  # the folder, or its results.csv
    with folder.writer_lock():
        out = str(folder.root)
        specs, before = _with_corrections(discover_cases(args.target), out, args.original_labels)
        records = _keep_before(load_records(specs, out, settings), before, out)
        return _report(_finalise(records, out, settings, _reference(args, settings)), out)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score one case or a cohort",
        description="Score IMAGE (with --label) or a DATASET (nnU-Net/Decathlon folder, images/+labels/ folder, flat folder, or CSV manifest). "
        "Under torchrun, the ranks share the cohort and rank 0 writes the results.",
    )
    parser.add_argument("target", metavar="IMAGE|DATASET")
    parser.add_argument("--label", help="label map of IMAGE (one-case scoring)")
    parser.add_argument("--label-names", help="dataset.json-style file naming the classes of --label")
    parser.add_argument("--case-id", help="case id for one-case scoring (default: the image's name)")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--reference", help="reference.json of a scored cohort: place the cases on its AUV scale")
    parser.add_argument("--detector", help="detector.json of `auv audit --fit`: a detector column per structure (structures.csv) and case")
    parser.add_argument("--shard", type=parse_shard, metavar="I/N", help="score only every N-th case from the I-th (job arrays); then auv merge")
    add_original_labels_option(parser, "score")
    add_scoring_options(parser)
    parser.set_defaults(func=run)

    merger = subparsers.add_parser("merge", help="merge the shards of `auv score --shard` into results and a reference",
                                   description="Merge OUT/cases of every shard of DATASET (scored with the same options) into OUT/results.csv and OUT/reference.json.")
    merger.add_argument("target", metavar="DATASET")
    merger.add_argument("--out", required=True, help="the results folder the shards wrote to (or its results.csv)")
    merger.add_argument("--reference", help="place the cases on this saved cohort's scale instead")
    add_original_labels_option(merger, "merge the scores of")
    add_scoring_options(merger)
    merger.set_defaults(func=merge)
