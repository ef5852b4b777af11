"""``auv demo``: fetch the real sample cohort, score it with the embedded LiteMedSAM, and write something to look at.

After the table it writes the cohort report (with a page per case) and an
``auv explain`` page for the cohort's easiest and hardest structure, and
prints their paths: the mechanism, in a browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import discover_cases
from .score import warnings_as_lines

if TYPE_CHECKING:
    import pandas as pd

SUPERLATIVES = {"easy": "easiest", "hard": "hardest"}


def easy_and_hard(table: pd.DataFrame) -> dict[str, tuple[str, str, float]]:
    """The structures with the highest and the lowest S(Z|c) of a results table: {"easy"/"hard": (case, class, S)}.

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


def run(args: argparse.Namespace) -> int:
    from ..cohort import ScoreSettings, score_cohort
    from ..explain.cohort_values import class_values
    from ..explain.page import write_explain_page
    from ..explain.view import stored_class_view
    from ..report import write_report
    from ..sample_data import fetch_sample_cohort

    out = Path(args.out)
    manifest = fetch_sample_cohort(Path(args.data) if args.data else out / "sample_cohort")
    print(f"sample cohort: {manifest}")
    settings = ScoreSettings(device=args.device)
    results = out / "results"
    with warnings_as_lines():
        table = score_cohort(discover_cases(manifest), results, settings, progress=not args.no_progress)
    shown = table[["case_id", "auv", "S", "status"]].sort_values("auv", ascending=False)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"results: {results / 'results.csv'} (per-case JSON in {results / 'cases'})")
    print(f"report: {write_report(results, results / 'report.html')} (open it in a browser)")
    for kind, (case_id, class_name, s) in easy_and_hard(table[table["status"] == "ok"]).items():
        view = stored_class_view(results, case_id, class_name, settings)
        page = write_explain_page(view, out / "explain", class_values(results, class_name), cohort_source=f"The cases of {results}")
        print(f"explain, the {SUPERLATIVES[kind]} structure ({class_name} in {case_id}, S = {s:.4f}): {page.html}")
    return 0 if (table["status"] == "ok").all() else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="score the real sample cohort with the embedded LiteMedSAM, then write the report and two explain pages")
    parser.add_argument("--out", default="auv-demo", help="folder for the data and results (default: ./auv-demo)")
    parser.add_argument("--data", help="where to keep the sample cohort (default: OUT/sample_cohort)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)
