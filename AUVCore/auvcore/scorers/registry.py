"""What each scorer is, as data: the CLI, the audit and the Slicer module read this, not their own lists.

Torch-free: the scorers' code lives in :mod:`.case_scores` and
:mod:`.cohort_scores`, imported only when a case is scored.

Example:
    >>> SCORER_INFO["agreement"].stage, SCORER_INFO["agreement"].per_slice
    ('case', True)
    >>> parse_scorers("agreement,auv")
    ('auv', 'agreement')
    >>> "prototype" in parse_scorers("all"), "cleanlab" in parse_scorers("all")
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["measure", "case", "cohort", "combined", "external"]

PAPER_SCORER = "auv"
LABEL_CHECK = "label_check"
#: The swap test: computed at the cohort stage from the prototypes that the cache already holds.
IDENTITY = "identity"
#: ``label_check``'s parts that are judged against a structure's look-alikes (other cases of its class and
#: modality): they count only where it has some.
COHORT_PARTS: tuple[str, ...] = ("agreement", "boundary_gradient", "consistency", "mahalanobis", IDENTITY, "boundary_distance")
#: ``label_check``'s case-intrinsic parts, computed on the case alone: they count everywhere.
CASE_PARTS: tuple[str, ...] = ("missed_slices", "stray_voxels", "shift", "edge_offset")
#: The scorers ``label_check`` combines, one per kind of label error they aim at.
LABEL_CHECK_PARTS: tuple[str, ...] = (*COHORT_PARTS, *CASE_PARTS)
#: Confident learning on out-of-fold probabilities of a trained segmenter (``auv oof``), not the foundation model.
CLEANLAB = "cleanlab"


@dataclass(frozen=True)
class ScorerInfo:
    """One scorer.

    Attributes:
        stage: ``measure`` (the paper's S, from the spectrum), ``case`` (from one
            case's model pass), ``cohort`` (compares cases' prototypes),
            ``combined`` (made from other scorers at the cohort stage) or
            ``external`` (from files made outside the foundation-model pass, read
            at the cohort stage: ``cleanlab`` reads ``--oof``; not part of ``all``).
        per_slice: it also gives one value per slice (to find a structure's worst slice).
        needs_prototypes: it reads the cases' class prototypes saved beside their JSON.
        higher_is_suspect: the direction of its class values (S of ``auv`` is
            the other way: low S = hard); case scores are always higher = more suspect.
        per_case: it gives one value per case (under the class name ``image``), not per class.
        needs_probe: it reads the probe's label-independent evidence (:mod:`auvcore.scorers.evidence`): the
            model prompted again with boxes that do not follow the label.
        two_sided: its class values are signed (too big or too small): a structure is unusual for its distance
            from its class's median either way, so its z is |z|.
        summary: one line for help texts.
    """

    name: str
    stage: Stage
    per_slice: bool
    needs_prototypes: bool
    higher_is_suspect: bool
    summary: str
    per_case: bool = False
    needs_probe: bool = False
    two_sided: bool = False

    @property
    def cross_case(self) -> bool:
        """Its values need the whole cohort, so a case cannot be placed on a saved reference with it."""
        return self.stage in ("cohort", "combined", "external")


_ALL = (
    ScorerInfo(PAPER_SCORER, "measure", False, False, False, "the paper's S(Z|c): entropy of the mask logits' energy spectrum"),
    ScorerInfo("agreement", "case", True, False, True, "1 - Dice of the model's box-prompted mask and the label"),
    ScorerInfo("fisher", "case", True, False, True, "1 / (1 + Fisher ratio) of the logits inside vs outside the label"),
    ScorerInfo("variance", "case", False, False, True, "variance of the class's mask logits across its slices"),
    ScorerInfo("boundary_gradient", "case", True, False, True, "minus the image gradient on the label boundary"),
    ScorerInfo("boundary_logits", "case", True, False, True, "mask probability below 1 just inside / above 0 just outside the label"),
    ScorerInfo("boundary_distance", "case", True, False, True, "mean distance (mm) of the label boundary to the model's mask boundary"),
    ScorerInfo("contrast", "case", True, False, True, "cosine of the embeddings just inside vs just outside the label"),
    ScorerInfo("homogeneity", "case", True, False, True, "1 - cosine of the inside-label embeddings to their mean"),
    ScorerInfo("consistency", "case", True, False, True, "largest change of the inside-label prototype between slices"),
    ScorerInfo("image_auv", "case", False, False, True, "1 - S of the image embeddings (label-free)", per_case=True),
    ScorerInfo("stray_voxels", "case", False, False, True,
               "share of the label's voxels outside its largest connected component (a second blob of the class)"),
    ScorerInfo("edge_offset", "case", True, False, True,
               "mm from the label's boundary to where the image's intensity crosses halfway between inside and outside "
               "(+ = the edge lies inside the label: too big; - = too small)", two_sided=True),
    ScorerInfo("probe_agreement", "case", True, False, True,
               "1 - Dice of the label and the model's mask under prompts that do not follow the label (the probe)", needs_probe=True),
    ScorerInfo("size_offset", "case", True, False, True,
               "mm between the label's boundary and the probe mask's, signed (+ = the label is larger)", needs_probe=True,
               two_sided=True),
    ScorerInfo("shift", "case", True, False, True, "mm between the label's and the probe mask's centres, averaged over slices",
               needs_probe=True),
    ScorerInfo("missed_slices", "case", False, False, True,
               "Dice of the probe mask on a slice just beyond the label's end and the end slice's label (the larger end)",
               needs_probe=True),
    ScorerInfo("prototype", "cohort", False, True, True, "1 - cosine of the class prototype to the cohort's median"),
    ScorerInfo("mahalanobis", "cohort", False, True, True, "Mahalanobis distance of the class prototype in the cohort"),
    ScorerInfo(IDENTITY, "cohort", False, True, True,
               "how much better the class and another of its case fit each other's cohort prototype than their own (a swap)"),
    ScorerInfo(LABEL_CHECK, "combined", False, True, True,
               "sum of the positive robust z of " + ", ".join(COHORT_PARTS) + " (where the structure has look-alikes) and of "
               + ", ".join(CASE_PARTS) + " (everywhere)"),
    ScorerInfo(CLEANLAB, "external", False, False, True,
               "1 - cleanlab's label quality of the structure under out-of-fold probabilities (needs --oof, from auv oof)"),
)
#: Every scorer by name, in the order of the results table's columns.
SCORER_INFO: dict[str, ScorerInfo] = {info.name: info for info in _ALL}
SCORERS: tuple[str, ...] = tuple(SCORER_INFO)
#: Scorers whose values need the whole cohort: they are not placed on a saved reference.
CROSS_CASE = frozenset(name for name, info in SCORER_INFO.items() if info.cross_case)
#: Scorers that read the probe's evidence: the probe runs when one of them is asked for.
PROBE_SCORERS = frozenset(name for name, info in SCORER_INFO.items() if info.needs_probe)
#: Scorers that read the embeddings' inside-label prototypes.
NEEDS_PROTOTYPES = frozenset(name for name, info in SCORER_INFO.items() if info.needs_prototypes)
#: Scorers that read files of their own (not the foundation model's pass), named explicitly, never by ``all``.
EXTERNAL = frozenset(name for name, info in SCORER_INFO.items() if info.stage == "external")


def parse_scorers(text: str) -> tuple[str, ...]:
    """``"auv,agreement"`` or ``"all"`` -> the scorer names in the registry's order (``auv`` first).

    ``label_check`` brings its parts along. ``all`` is every scorer of the
    foundation-model pass: the external ones (``cleanlab``) need files of their
    own and are named explicitly (``all,cleanlab``).

    Raises:
        ValueError: naming the unknown scorers and the known ones.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if "all" in names:
        names = [n for n in names if n != "all"] + [n for n in SCORERS if n not in EXTERNAL]
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise ValueError(f"unknown scorer(s) {', '.join(unknown)}; choose from {', '.join(SCORERS)} or 'all'")
    wanted = {PAPER_SCORER, *names, *(LABEL_CHECK_PARTS if LABEL_CHECK in names else ())}
    return tuple(n for n in SCORERS if n in wanted)


def scale_options(name: str) -> dict[str, bool]:
    """How a scorer's class values are put on a cohort scale (:meth:`auvcore.scales.ScoreScale.fit`): ``auv``'s S as
    -log S, ``label_check``, already a sum of robust z, as it is, and a signed scorer's z as |z|.

    Example:
        >>> scale_options("label_check")
        {'negative_log': False, 'in_z_units': True, 'two_sided': False}
        >>> scale_options("edge_offset")["two_sided"]
        True
    """
    info = SCORER_INFO.get(name)
    return {"negative_log": name == PAPER_SCORER, "in_z_units": name == LABEL_CHECK,
            "two_sided": bool(info and info.two_sided)}
