"""``auv explain``: one class of one case as the foundation model sees it (an HTML page and its PNGs)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import CaseSpec, read_label_names
from ..errors import InputError
from ..imaging import DEFAULT_CT_WINDOW
from ..results import ResultsFolder
from ..scorers.registry import LABEL_CHECK

if TYPE_CHECKING:
    from ..cohort import ScoreSettings
    from ..explain.view import ClassView


def _is_results_folder(target: Path) -> bool:
    return target.is_dir() and ResultsFolder(target).cases_dir.is_dir()


def _settings(args: argparse.Namespace) -> ScoreSettings:
    from ..cohort import ScoreSettings

    return ScoreSettings(backbone=args.backbone, checkpoint=args.checkpoint, modality=args.modality,
                         ct_window=tuple(args.ct_window), device=args.device)


def _case_spec(args: argparse.Namespace, target: Path) -> CaseSpec:
    """The case to explain: IMAGE with --label, or a scored case of a results folder."""
    from ..explain.view import read_scored_case

    if not target.exists():
        raise InputError(target, "does not exist (give an image with --label LABEL, or a results folder of `auv score` with --case ID)")
    if _is_results_folder(target):
        if not args.case:
            raise InputError(target, "is a results folder: say which case to explain with --case ID")
        folder = ResultsFolder(target)
        record = read_scored_case(folder, args.case)
        assert record.label is not None
        return CaseSpec(record.case_id, folder.recorded_path(record.image), folder.recorded_path(record.label),
                        {c.id: c.name for c in record.classes})
    if not args.label:
        raise InputError(target, "explaining an image needs its label map: give --label LABEL (or a results folder and --case)")
    names = read_label_names(Path(args.label_names)) if args.label_names else {}
    return CaseSpec(args.case or target.name.split(".")[0], target, Path(args.label), names)


def _print_view(view: ClassView, heading: str) -> None:
    from ..explain.figures import spectrum_text

    print(f"{heading}: {view.name} in {view.case_id} ({view.rows} slices; {view.source})")
    print("  " + spectrum_text(view).replace("\n", "\n  "))
    from ..explain.page import LABEL_CHECK_READING

    fit, fit_source = view.mask_fit()
    print(f"  mask fit: Dice of the model's mask and the label = {'—' if fit is None else f'{fit:.4f}'} ({fit_source}; not what S measures)")
    for name, value in view.scores.items():
        meaning = f" ({LABEL_CHECK_READING})" if name == LABEL_CHECK else ""
        print(f"  {name} = {'—' if value is None else f'{value:.6f}'}{meaning}")


def run(args: argparse.Namespace) -> int:
    from ..explain.cohort_values import class_values, cohort_source
    from ..explain.compare import parse_compare, plant_copy
    from ..explain.live import compute_class_view
    from ..explain.page import write_explain_page
    from ..explain.view import stored_class_view

    started = time.perf_counter()
    target = Path(args.target)
    settings = _settings(args)
    spec = _case_spec(args, target)
    compare = parse_compare(args.compare) if args.compare else None
    stored = _is_results_folder(target)
    view = stored_class_view(target, spec.case_id, args.class_name, settings) if stored else compute_class_view(spec, args.class_name, settings)
    _print_view(view, "explained")
    reference = target if stored else (Path(args.reference) if args.reference else None)
    cohort = class_values(reference, view.name) if reference is not None else None
    planted = None
    if compare is not None:
        copy = plant_copy(spec, view.class_id, compare[0], compare[1], Path(args.out), seed=args.seed)
        copy_view = compute_class_view(copy.spec, view.name, settings)
        _print_view(copy_view, f"planted {copy.title}")
        planted = (copy_view, copy)
    page = write_explain_page(view, args.out, cohort, planted, cohort_source(reference, view.name, cohort) if cohort else "")
    print(f"page: {page.html}")
    print(f"pictures: {', '.join(str(p) for p in page.pngs)}")
    print(f"numbers: {page.summary}; {time.perf_counter() - started:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain", help="show how the foundation model sees one class of a case (HTML page and PNGs)",
        description="Explain IMAGE --label LABEL --class NAME, or RESULTS --case ID --class NAME (reusing the stored "
                    "scores): the slices with their box prompts and the model's mask logits, the energy spectrum "
                    "S is the entropy of, the class in the reference cohort, and with --compare a planted copy side by side.")
    parser.add_argument("target", metavar="IMAGE|RESULTS")
    parser.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="the class to explain (name, label_<id> or id)")
    parser.add_argument("--out", required=True, help="folder for the page, its PNGs and the planted copy")
    parser.add_argument("--label", help="label map of IMAGE")
    parser.add_argument("--label-names", help="dataset.json-style file naming the classes of --label")
    parser.add_argument("--case", help="the case id: which case of RESULTS, or the name of IMAGE on the page")
    parser.add_argument("--reference", help="a results folder of `auv score`: place the class among its cases (IMAGE only)")
    parser.add_argument("--compare", metavar="KIND[=MAGNITUDE]",
                        help="plant one audit corruption (blur, noise, dilate, erode, shift, dropout, blob, swap) in a copy and show both")
    parser.add_argument("--seed", type=int, default=0, help="seed of the planted corruption (default: 0)")
    parser.add_argument("--backbone", default="litemedsam", help="foundation model (default: litemedsam, embedded)")
    parser.add_argument("--checkpoint", help="weights file (medsam2, or a fine-tuned LiteMedSAM)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--modality", default="auto", choices=["auto", "ct", "mr"])
    parser.add_argument("--ct-window", nargs=2, type=float, default=DEFAULT_CT_WINDOW, metavar=("LOW", "HIGH"))
    parser.set_defaults(func=run)
