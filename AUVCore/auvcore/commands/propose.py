"""``auv propose``: a structure's proposed correction (the model's own outline; with ``--rule targeted`` the label
less the parts the model does not touch; with ``--rule edge`` the label moved onto the image's edge), shown,
exported or accepted.

Example (shell):
    auv propose results lung1_z30                       # what the proposal would change, per structure
    auv propose results lung1_z30 --out proposed.nii.gz # the whole proposed label map, to edit elsewhere
    auv propose results lung1_z30 --structure "lung tumour" --accept --note "checked on slices 31-33"
    auv propose results lung1_z30 --rule targeted --accept # only remove the label's parts the model does not touch
    auv propose results lung1_z30 --rule edge --structure "lung tumour"  # shift, shrink or grow it onto the edge
    auv propose results lung1_z30 --disagreement "lung tumour" --out disagreement.nii.gz   # 1 label only, 2 model only

Torch-free: it reads the feature cache that ``auv score --scorers all`` wrote (the ``edge`` rule reads the image
instead); no model runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..results import ResultsFolder


def _dice(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    from ..imaging import write_image_atomic
    from ..results.proposals import LABEL_ONLY, MODEL_ONLY, accept_proposal, disagreement_map, proposed_label

    folder = ResultsFolder(Path(args.results))
    if not folder.root.is_dir():
        raise InputError(folder.root, "is not a results folder")
    if args.disagreement:
        if args.accept or not args.out:
            raise InputError(folder.root, "--disagreement writes a map: give --out FILE (and not --accept)")
        write_image_atomic(disagreement_map(folder, args.case, args.disagreement), args.out)
        print(f"{args.out}: {LABEL_ONLY} = the label has {args.disagreement!r} and the model does not, {MODEL_ONLY} = the reverse")
        return 0
    structures = args.structure or None
    if args.accept:
        saved = accept_proposal(folder, args.case, structures, note=args.note, rule=args.rule)
        for change in saved.changes:
            print(f"{change.structure}: fixed by the proposal (+{change.added} / -{change.removed} voxels, "
                  f"Dice to the label {_dice(change.dice)})")
        print(f"correction: {folder.root / saved.file} (review.json records it as an accepted proposal)")
        return 0
    proposed = proposed_label(folder, args.case, structures, args.rule)
    if not proposed.changes:
        print(f"{args.case}: the proposals agree with the label {proposed.label} voxel for voxel")
    for change in proposed.changes:
        print(f"{change.structure}: the proposal adds {change.added} and removes {change.removed} voxels "
              f"(Dice to the label {_dice(change.dice)})")
    if args.out:
        write_image_atomic(proposed.image, args.out)
        print(f"proposed label map: {args.out} (on the grid of {proposed.label}; nothing saved in {folder.root})")
    else:
        rule = "" if args.rule == "model" else f" --rule {args.rule}"
        print(f"accept with: auv propose {args.results} {args.case}{rule} --accept" + "".join(f" --structure {s!r}" for s in args.structure))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "propose",
        help="show, export or accept a structure's proposed correction (the model's mask under label-independent prompts)",
        description="A scored case's proposed corrections: per structure, the foundation model's mask under box prompts "
        "that do not follow the label (the probe of --scorers all), restricted to the structure. Without --accept it says "
        "what a proposal would change (and writes the proposed label map with --out); --accept saves it as the case's "
        "correction (corrections/, the verdict fixed, marked as an accepted proposal). No model runs.",
    )
    parser.add_argument("results", metavar="RESULTS", help="a results folder of auv score --scorers all")
    parser.add_argument("case", metavar="CASE", help="the case id")
    parser.add_argument("--structure", action="append", default=[], metavar="NAME",
                        help="the structure to propose for (repeatable; default: every structure with a stored proposal, "
                        "or every structure with --rule edge)")
    parser.add_argument("--rule", choices=("model", "targeted", "edge"), default="model",
                        help="model: the model's outline (default); targeted: the label less its parts that the model's "
                        "mask does not touch (a stray blob), its boundary kept; edge: the label shifted, shrunk or grown in "
                        "whole pixels onto the image's own intensity edge (no model; see the lesion audit's figures in the "
                        "documentation)")
    parser.add_argument("--accept", action="store_true", help="save the proposal as the case's correction")
    parser.add_argument("--note", default="", help="the reviewer's note kept with an accepted proposal")
    parser.add_argument("--out", help="write the proposed label map (or, with --disagreement, the map) to this file")
    parser.add_argument("--disagreement", metavar="NAME", help="write the structure's disagreement map to --out instead")
    parser.set_defaults(func=run)
