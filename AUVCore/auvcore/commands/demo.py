"""``auv demo``: fetch the real sample cohort, score it with the embedded LiteMedSAM, and write something to look at.

It scores what the annotation review needs (``--scorers label_check`` and the
parts it combines, from the same model pass), so the report ranks structures
by the review score at once. After the table it writes the cohort report (with
a page per case) and an ``auv explain`` page for the structures with the
highest and the lowest S, and prints their paths: the mechanism, in a browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import discover_cases
from .score import scorers_argument, warnings_as_lines

if TYPE_CHECKING:
    import pandas as pd

#: What the demo scores by default: the review score and its parts (one model pass).
DEMO_SCORERS = "label_check"
#: What the two explain pages are chosen by, said as the demo prints them.
CHOSEN_BY = {"easy": "the highest S", "hard": "the lowest S"}


def easy_and_hard(table: pd.DataFrame) -> dict[str, tuple[str, str, float]]:
    """The structures with the highest and the lowest S(Z|c) of a results table: {"easy"/"hard": (case, class, S)}.

    "Easy" and "hard" in the paper's sense only: how the energy of the class's mask logits spreads across its
    slices, not how well the model's mask fits the label (the demo prints that beside it).

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"case_id": ["a", "b"], "S": [0.5, 0.1], "S_liver": [0.3, 0.1], "S_spleen": [0.2, None]})
        >>> easy_and_hard(table)
        {'easy': ('a', 'liver', 0.3), 'hard': ('b', 'liver', 0.1)}
    """
    columns = [c for c in table.columns if c.startswith("S_")]
    long = table[["case_id", *columns]].melt(id_vars="case_id", var_name="column", value_name="value").dropna(subset=["value"])
    picked = {}
    for kind, row in (("easy", long.loc[long["value"].idxmax()]), ("hard", long.loc[long["value"].idxmin()])):
        picked[kind] = (str(row["case_id"]), str(row["column"]).removeprefix("S_"), float(row["value"]))
    return picked


def _fit_text(results: Path, case_id: str, class_name: str) -> str:
    """How well the model's mask fits the label, from the stored ``agreement`` (1 - Dice), where it was scored."""
    from ..results import ResultsFolder, read_case_record

    agreement = read_case_record(ResultsFolder(results).case_json(case_id)).class_values("agreement").get(class_name)
    return "" if agreement is None else f"; its model mask fits the label with Dice {1.0 - agreement:.2f}"


def run(args: argparse.Namespace) -> int:
    from ..cohort import ScoreSettings, score_cohort
    from ..explain.cohort_values import class_values, cohort_source
    from ..explain.page import write_explain_page
    from ..explain.view import stored_class_view
    from ..report import write_report
    from ..sample_data import fetch_sample_cohort

    out = Path(args.out)
    manifest = fetch_sample_cohort(Path(args.data) if args.data else out / "sample_cohort")
    print(f"sample cohort: {manifest}")
    settings = ScoreSettings(device=args.device, scorers=args.scorers)
    results = out / "results"
    with warnings_as_lines():
        table = score_cohort(discover_cases(manifest), results, settings, progress=not args.no_progress)
    columns = ["case_id", "auv", *[c for c in ("label_check",) if c in table.columns], "S", "status"]
    shown = table[columns].sort_values("auv", ascending=False)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"results: {results / 'results.csv'} (per-case JSON in {results / 'cases'}; structures in {results / 'structures.csv'})")
    print(f"report: {write_report(results, results / 'report.html')} (open it in a browser)")
    for kind, (case_id, class_name, s) in easy_and_hard(table[table["status"] == "ok"]).items():
        view = stored_class_view(results, case_id, class_name, settings)
        cohort = class_values(results, class_name)
        page = write_explain_page(view, out / "explain", cohort, cohort_source=cohort_source(results, class_name, cohort))
        print(f"explain, the structure with {CHOSEN_BY[kind]} ({class_name} in {case_id}, S = {s:.4f}: how its mask logits' "
              f"energy spreads across its slices{_fit_text(results, case_id, class_name)}): {page.html}")
    return 0 if (table["status"] == "ok").all() else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="score the real sample cohort with the embedded LiteMedSAM, then write the report and two explain pages")
    parser.add_argument("--out", default="auv-demo", help="folder for the data and results (default: ./auv-demo)")
    parser.add_argument("--data", help="where to keep the sample cohort (default: OUT/sample_cohort)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scorers", default=DEMO_SCORERS, type=scorers_argument,
                        help=f"what to score (default: {DEMO_SCORERS}, the review score and its parts; 'all' for every scorer)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)
