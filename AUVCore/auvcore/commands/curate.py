"""``auv filter``, ``auv exclude``, ``auv include`` and ``auv report``: curating a scored cohort.

Example (shell):
    auv filter results --keep 0.90          # exclusions.json, retained_manifest.csv, splits_final.json
    auv exclude case_017 --results results --reason "label of the wrong phase"
    auv include case_042 --results results --reason "checked: fine"
    auv filter results                      # re-run: same keep as last time, manual decisions kept
    auv filter results --by label_check     # the quantile of any scorer's case score instead of the AUV
    auv report results --out results/report.html
    auv report results --out report.html --by agreement   # structures judged by agreement's per-class z
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..curation import (
    DEFAULT_KEEP,
    MISSING_FILE,
    NNUNET_FOLDS,
    NNUNET_SEED,
    ExclusionList,
    QuantileRule,
    load_exclusions,
    retained_cases,
    scored_cases,
    updating_exclusions,
    write_manifest,
    write_splits_final,
)
from ..errors import InputError
from ..report_defaults import DEFAULT_SUSPECTS, DEFAULT_TOP
from ..results import EXCLUSIONS_JSON, RETAINED_MANIFEST_CSV, SPLITS_JSON, ResultsFolder, labels_in_use, read_results


#: Columns of the results table that are not case scores (``S`` and ``S_<class>`` are the measure's raw values).
NOT_SCORES = frozenset({"case_id", "S", "status", "error", "backbone", "mode", "image", "label"})


def add_original_labels_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--original-labels``: the commands that read labels use a case's correction unless asked not to."""
    parser.add_argument("--original-labels", action="store_true",
                        help=f"{what} the source labels, not the corrections saved in the results folder (corrections/)")


def _keep_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"--keep must be in (0, 1], got {text}")
    return value


def _structure_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--structures must be at least 1, got {text}")
    return value


def _check_column(results, column: str, path: Path) -> None:
    """InputError naming the table when ``--by`` is not one of its score columns."""
    scores = [c for c in results.columns if c not in NOT_SCORES and not c.startswith("S_")]
    if column not in scores:
        raise InputError(path, f"has no score column {column!r} for --by; its score columns: {', '.join(scores)}")


def _stored_keep(exclusions: ExclusionList) -> float:
    return exclusions.rule.keep if exclusions.rule is not None else DEFAULT_KEEP


def run_filter(args: argparse.Namespace) -> int:
    """Apply the quantile rule, merge it with the manual decisions, and write the three exports (one filter at a time)."""
    results_dir = ResultsFolder.find(args.results).root
    with ResultsFolder(Path(args.out) if args.out else results_dir).writer_lock():
        return _filter(args, results_dir)


def _filter(args: argparse.Namespace, results_dir: Path) -> int:
    from ..curation.case_facts import NAMED_CONFLICTS, retained_facts

    results = read_results(results_dir)
    out = Path(args.out) if args.out else results_dir
    target = out / EXCLUSIONS_JSON
    with updating_exclusions(target) as exclusions:
        rule_file = target
        if out != results_dir and exclusions.loaded_digest == MISSING_FILE:
            # A new output folder starts from the manual decisions made in the results folder.
            rule_file = results_dir / EXCLUSIONS_JSON
            source = load_exclusions(rule_file)
            exclusions.manual, exclusions.rule = source.manual, source.rule
        last = exclusions.rule
        keep = args.keep if args.keep is not None else _stored_keep(exclusions)
        by = args.by or (last.by if last is not None else "auv")
        _check_column(results, by, ResultsFolder(results_dir).results_csv)
        exclusions.apply_quantile(results, keep, by)
    retained = retained_cases(results, exclusions)
    facts = retained_facts(results_dir, retained)
    rows = results[results["case_id"].isin(retained)].copy()
    folder = ResultsFolder(results_dir)
    labels = labels_in_use(folder, dict(zip(rows["case_id"], rows["label"].where(rows["label"].notna(), None))),
                           original=args.original_labels)
    corrected = set(labels.corrected)
    rows["label"] = [os.path.abspath(labels.path(case)) if case in corrected else label
                     for case, label in zip(rows["case_id"], rows["label"])]
    if any(facts.label_names.values()):
        rows = rows.assign(label_names=[facts.label_names.get(case_id) for case_id in rows["case_id"]])
    write_manifest(rows, out / RETAINED_MANIFEST_CSV)
    scored = scored_cases(results, by)
    rule = exclusions.rule
    threshold = "none (no scored case)" if rule is None or rule.threshold is None else f"{rule.threshold:.4f}"
    print(f"keep p={keep:g} ({_origin(args.keep, last, rule_file, '--keep', f'the default, {DEFAULT_KEEP:g}')}), "
          f"by {by} ({_origin(args.by, last, rule_file, '--by', 'the default, the AUV')})")
    print(f"threshold F^-1(p) = {threshold} over {len(scored)} scored case(s)")
    print(_decision_summary(exclusions, len(retained), len(results)))
    unscored = sorted(set(results["case_id"]) - set(scored["case_id"]))
    if unscored:
        print(f"{len(unscored)} case(s) without {by} (failed scoring), neither kept nor excluded by the quantile: {', '.join(unscored)}")
    print(labels.summary(folder))
    print(f"wrote {target}")
    print(f"wrote {out / RETAINED_MANIFEST_CSV}")
    conflicts = facts.conflicts()
    if conflicts:
        print(f"warning: {RETAINED_MANIFEST_CSV} mixes label tables whose values mean different classes: {len(conflicts)} "
              f"value(s) differ, e.g. {'; '.join(conflicts[:NAMED_CONFLICTS])}. A network trained on them learns two classes "
              "as one: train such cases apart, or map their labels to one table first")
    _write_splits(out, retained, facts.image_keys, facts.shared_images(), args.folds, args.seed)
    return 0


def _origin(given, last: QuantileRule | None, rule_file: Path, option: str, default: str) -> str:
    """Where a filter setting in force came from: the command line, the last filter (its file), or the default."""
    if given is not None:
        return f"given with {option}"
    if last is not None:
        return f"the last filter's, from {rule_file}; {option} to change it"
    return default


def _decision_summary(exclusions: ExclusionList, retained: int, cases: int) -> str:
    """What is excluded and why, adding up: the quantile's exclusions in force, manual ones, and those overridden."""
    effective = exclusions.effective()
    by_quantile = sorted(c for c, d in effective.items() if d.action == "exclude" and d.reason == "auv-quantile")
    by_hand = sorted(c for c, d in effective.items() if d.action == "exclude" and d.reason == "manual")
    overridden = sorted(c for c in exclusions.quantile if effective[c].reason == "manual" and effective[c].action == "include")
    line = f"excluded {len(by_quantile) + len(by_hand)}: {len(by_quantile)} by the quantile rule, {len(by_hand)} by hand"
    if overridden:
        line += f"; {len(overridden)} the quantile would exclude, included by hand ({', '.join(overridden)})"
    return f"{line}; retained {retained} of {cases}"


def _write_splits(out: Path, retained: list[str], image_keys: dict[str, str], shared: list[list[str]], folds: int, seed: int) -> None:
    """Write nnU-Net's splits of the retained cases, cases that share an image in one fold, and say what it holds."""
    stale = out / SPLITS_JSON
    try:
        splits = write_splits_final(retained, stale, folds=folds, seed=seed, groups=image_keys)
    except ValueError as error:
        if stale.exists():
            stale.unlink()  # an earlier split would name cases that are no longer retained
        print(f"no {stale}: {error}")
        return
    print(f"wrote {stale} ({len(splits)} folds, seed {seed})")
    for group in shared:
        print(f"  {', '.join(group)} share one image (same content hash): kept in one fold")
    if len(splits) < folds:
        units = len(retained) - sum(len(group) - 1 for group in shared)
        print(f"note: {units} retained case(s){' or groups sharing an image' if shared else ''} for {folds} folds, so "
              f"{SPLITS_JSON} holds folds 0-{len(splits) - 1} only; nnU-Net would train a fold it lacks on a random split "
              f"of its own: train folds 0-{len(splits) - 1}, or give --folds {len(splits)}")


def _case_auv(results_dir: Path, case_id: str) -> float | None:
    results = read_results(results_dir)
    match = results[results["case_id"] == case_id]
    if match.empty:
        raise InputError(ResultsFolder(results_dir).results_csv, f"has no case {case_id!r}")
    auv = float(match["auv"].iloc[0])
    return None if auv != auv else auv


def run_exclude(args: argparse.Namespace) -> int:
    """Record a manual exclusion in RESULTS/exclusions.json."""
    results_dir = ResultsFolder.find(args.results).root
    auv = _case_auv(results_dir, args.case)
    with updating_exclusions(results_dir / EXCLUSIONS_JSON) as exclusions:
        exclusions.exclude(args.case, auv, note=args.reason)
    print(f"excluded {args.case} by hand; run `auv filter {results_dir}` to refresh the manifest and splits")
    return 0


def run_include(args: argparse.Namespace) -> int:
    """Record a manual inclusion in RESULTS/exclusions.json (it overrides any exclusion)."""
    results_dir = ResultsFolder.find(args.results).root
    auv = _case_auv(results_dir, args.case)
    with updating_exclusions(results_dir / EXCLUSIONS_JSON) as exclusions:
        exclusions.include(args.case, note=args.reason, auv=auv)
    print(f"included {args.case} by hand; run `auv filter {results_dir}` to refresh the manifest and splits")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Write the HTML cohort report."""
    from ..report import write_report

    from ..report import Ranking
    from ..results.structures import judged

    results_dir = ResultsFolder.find(args.results).root
    out = write_report(results_dir, args.out, keep=args.keep, top=args.top, by=args.by, suspects=args.structures)
    ranking = Ranking.of(results_dir, read_results(results_dir), load_exclusions(results_dir / EXCLUSIONS_JSON), args.by, args.structures)
    judged_count = int(judged(ranking.structures).sum())
    print(f"wrote {out}: structures ranked by {ranking.scale.by} ({ranking.why}); the top {len(ranking.listed)} of "
          f"{judged_count} judged listed, {len(ranking.structures) - judged_count} not judged against their own modality listed apart")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the curation subcommands to the ``auv`` parser."""
    filter_parser = subparsers.add_parser(
        "filter", help="exclude the cases above the AUV quantile; write exclusions, retained manifest and nnU-Net splits",
        description="Keep the cases with AUV <= F^-1(p), the paper's quantile, merged with manual decisions.")
    filter_parser.add_argument("results", help="folder written by `auv score`, or its results.csv")
    filter_parser.add_argument("--keep", type=_keep_fraction, default=None,
                               help=f"fraction p to keep (default: the last filter's, else {DEFAULT_KEEP}; the paper's best is 0.90)")
    filter_parser.add_argument("--by", metavar="COLUMN", help="the results column whose quantile decides: auv or any scorer scored "
                               "with --scorers (default: the last filter's, else auv)")
    filter_parser.add_argument("--out", help="folder for the three files (default: RESULTS)")
    filter_parser.add_argument("--folds", type=int, default=NNUNET_FOLDS, help="cross-validation folds (default 5)")
    filter_parser.add_argument("--seed", type=int, default=NNUNET_SEED, help="split seed (default nnU-Net's 12345)")
    add_original_labels_option(filter_parser, "the retained manifest names")
    filter_parser.set_defaults(func=run_filter)

    exclude_parser = subparsers.add_parser("exclude", help="exclude a case by hand")
    exclude_parser.add_argument("case", help="case id as in results.csv")
    exclude_parser.add_argument("--results", required=True, help="folder written by `auv score`, or its results.csv")
    exclude_parser.add_argument("--reason", required=True, help="why (kept in exclusions.json)")
    exclude_parser.set_defaults(func=run_exclude)

    include_parser = subparsers.add_parser("include", help="include a case by hand, overriding any exclusion")
    include_parser.add_argument("case", help="case id as in results.csv")
    include_parser.add_argument("--results", required=True, help="folder written by `auv score`, or its results.csv")
    include_parser.add_argument("--reason", default="", help="why (kept in exclusions.json)")
    include_parser.set_defaults(func=run_include)

    report_parser = subparsers.add_parser("report", help="write the HTML cohort report")
    report_parser.add_argument("results", help="folder written by `auv score`, or its results.csv")
    report_parser.add_argument("--out", required=True, help="HTML file to write")
    report_parser.add_argument("--keep", type=_keep_fraction, default=None,
                               help=f"fraction p for the threshold line (default: the last filter's, else {DEFAULT_KEEP})")
    report_parser.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"highest-AUV cases with thumbnails (default {DEFAULT_TOP})")
    report_parser.add_argument("--by", metavar="SCORER", help="what structures are listed and coloured by: a scorer's robust z "
                               "within each class (its <scorer>_z column of structures.csv) or detector (default: detector "
                               "when the cohort was scored with one, else the last filter's --by when structures have its z, else auv)")
    report_parser.add_argument("--structures", type=_structure_count, default=DEFAULT_SUSPECTS, metavar="N",
                               help=f"most suspect structures listed (default {DEFAULT_SUSPECTS})")
    report_parser.set_defaults(func=run_report)
