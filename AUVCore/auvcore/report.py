"""The cohort report: one self-contained HTML page (PNG images embedded as base64).

Structures are judged by a chosen score (``--by``): each structure's robust z
within its class across the cohort (the ``<scorer>_z`` columns of
``structures.csv``), or the fitted ``detector``'s probability where the
cohort was scored with one. U = 1 - S itself lies in 0.90-0.99 for almost
every structure, so it tells a reviewer little; the z says "unusual for this
structure in this cohort".

The page shows the AUV histogram with the quantile threshold F^-1(p), the most
suspect structures of the cohort (case, class, value, z, worst slice and its
LPS centre, any reviewer's verdict), the per-class distribution of the chosen
score on an axis fitted to it, a table of the highest-AUV cases with a
thumbnail of the worst slice whose structures are coloured by their z on the
fixed scale of :mod:`auvcore.results.colours` (the Slicer module's rule) with
its colour bar, the excluded cases, and the cases whose scoring failed. Plots
use matplotlib's object API (no pyplot), so the report never changes the
caller's matplotlib backend (Slicer's included).

Example:
    >>> write_report("results", "results/report.html", keep=0.9, by="agreement")  # doctest: +SKIP
    PosixPath('results/report.html')
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from .curation import DEFAULT_KEEP, Decision, ExclusionList, load_exclusions, quantile_threshold, retained_cases, scored_cases, tool_version
from .errors import InputError
from .explain.case_page import FlaggedStructure, structure_anchor, write_case_page
from .figures import png_data_uri
from .files import atomic_write_bytes
from .imaging import detect_modality, load_case, normalise_intensity
from .report_defaults import DEFAULT_SUSPECTS, DEFAULT_TOP
from .results import STRUCTURES_CSV, CaseRecord, ResultsFolder, read_case_record, read_results, read_structures, safe_file_name, structures_table
from .results.colours import COLORMAPS, UNDEFINED_COLOUR, Z_RANGE, map_colour
from .results.corrections import Correction, load_corrections
from .results.review import FIXED, Review, Verdict, load_review
from .results.structures import judged, worst_slice, worst_slice_centre
from .scales import MIN_CASES_PER_MODALITY, RANK_DECIMALS, class_set_advice, unjudged_reason
from .scorers.registry import LABEL_CHECK, PAPER_SCORER, SCORER_INFO

#: The colour map of structure colours (the Slicer module's default).
STRUCTURE_CMAP = "viridis"
#: The structures.csv column of the fitted detector's probability (``auv score --detector``).
DETECTOR_COLUMN = "detector"
#: The fewest cases of a class for a box in the per-class plot: below it, the points alone.
MIN_BOX_CASES = 5


def auv_histogram(auv: np.ndarray, threshold: float | None, keep: float, excluded_auv: np.ndarray) -> Figure:
    """Histogram of the scored cases' AUV, the threshold F^-1(keep) as a line, excluded cases as marks."""
    figure = Figure(figsize=(7.0, 3.2))
    axes = figure.add_subplot()
    bins = np.histogram_bin_edges(auv, bins=min(30, max(5, auv.size)), range=(0.0, 1.0))
    axes.hist(auv, bins=bins, color="#4c72b0", edgecolor="white", label=f"{auv.size} scored cases")
    if threshold is not None:
        axes.axvline(threshold, color="#c44e52", linestyle="--", linewidth=2,
                     label=f"F$^{{-1}}$({keep:g}) = {threshold:.3f}: keep AUV ≤ this")
    if excluded_auv.size:
        axes.plot(excluded_auv, np.zeros_like(excluded_auv), "x", color="#c44e52", markersize=9,
                  markeredgewidth=2, clip_on=False, label=f"{excluded_auv.size} excluded")
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("AUV (0 = easiest, 1 = hardest in the cohort)")
    axes.set_ylabel("cases")
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
    return figure



@dataclass(frozen=True)
class StructureScale:
    """What structures are judged, coloured and plotted by: a ``structures.csv`` column on a fixed colour scale.

    For a scorer it is the scorer's robust z within each class on :data:`~auvcore.results.colours.Z_RANGE`
    (the Slicer module's rule); for the detector, its probability on 0 to 1.

    Example:
        >>> scale = StructureScale.of(pd.DataFrame(columns=["case_id", "agreement", "agreement_z"]), "agreement")
        >>> scale.column, (scale.low, scale.high), scale.colour(5.0) == map_colour(1.0)
        ('agreement_z', (0.0, 3.0), True)
    """

    by: str
    column: str
    low: float
    high: float
    label: str

    @classmethod
    def of(cls, structures: pd.DataFrame, by: str, source: str | Path = STRUCTURES_CSV) -> "StructureScale":
        """The scale of ``by`` in ``structures``; InputError naming ``source`` when it has no such column."""
        if by == DETECTOR_COLUMN and DETECTOR_COLUMN in structures.columns:
            return cls(by, DETECTOR_COLUMN, 0.0, 1.0, "detector: probability the structure is corrupted")
        if f"{by}_z" in structures.columns:
            what = "−log S" if by == PAPER_SCORER else by
            return cls(by, f"{by}_z", *Z_RANGE, f"{what}: robust z within its class (0 typical, 3 = 3 or more)")
        choices = [c[:-2] for c in structures.columns if c.endswith("_z")]
        choices += [DETECTOR_COLUMN] if DETECTOR_COLUMN in structures.columns else []
        raise InputError(source, f"has no column for --by {by!r}; choose one of {', '.join(choices) or 'none (no scorer)'}")

    def colour(self, value: float) -> tuple[float, float, float]:
        """RGB of a structure with this ``value`` (grey when NaN): clipped to the scale, then the colour map."""
        return map_colour((value - self.low) / (self.high - self.low), STRUCTURE_CMAP)

    def colorbar_map(self) -> ScalarMappable:
        """The same colours for a matplotlib colour bar (linear between the same 17 anchors)."""
        return ScalarMappable(Normalize(self.low, self.high), LinearSegmentedColormap.from_list(STRUCTURE_CMAP, COLORMAPS[STRUCTURE_CMAP]))


def default_by(structures: pd.DataFrame, exclusions: ExclusionList) -> str:
    """The score structures are ranked by when ``--by`` is not given (:func:`default_by_reason`).

    Example:
        >>> default_by(pd.DataFrame(columns=["auv_z", "label_check_z"]), ExclusionList())
        'label_check'
    """
    return default_by_reason(structures, exclusions)[0]


def default_by_reason(structures: pd.DataFrame, exclusions: ExclusionList) -> tuple[str, str]:
    """(the default ranking score, why): the fitted detector where the cohort was scored with one, else the review
    score ``label_check`` where structures have it, else the last filter's ``--by`` where they have its z, else ``auv``."""
    if DETECTOR_COLUMN in structures.columns:
        return DETECTOR_COLUMN, "the default: the cohort was scored with a fitted detector"
    if f"{LABEL_CHECK}_z" in structures.columns:
        return LABEL_CHECK, "the default: the review score, the one the audits found to find label errors"
    last = exclusions.rule.by if exclusions.rule is not None else PAPER_SCORER
    if last != PAPER_SCORER and f"{last}_z" in structures.columns:
        return last, "the default: the last auv filter's --by"
    return PAPER_SCORER, ("the default without a review score: auv is at chance for label errors; "
                          "score with --scorers label_check to rank by one")


def cohort_structures(results_dir: Path, results: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The cohort's ``structures.csv``, and where it came from.

    A folder scored before ``structures.csv`` existed gets the same table made
    from its case records (the per-class z of ``auv``, fitted on this cohort).
    """
    folder = ResultsFolder(results_dir)
    if folder.structures_csv.is_file():
        return read_structures(folder.structures_csv), str(folder.structures_csv)
    records = [read_case_record(folder.case_json(case_id)) for case_id in results["case_id"].astype(str)
               if folder.case_json(case_id).is_file()]
    return structures_table(records, (PAPER_SCORER,)), "the case records (no structures.csv)"


def suspect_structures(structures: pd.DataFrame, scale: StructureScale, count: int) -> pd.DataFrame:
    """The ``count`` most suspect structures by ``scale``'s column (then by the scorer's value), undefined ones left out.

    Only structures judged against enough cases of their class and modality are ranked; the others are
    :func:`unjudged_structures`.

    Example:
        >>> table = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "class": ["liver"] * 4,
        ...                       "judged_against": ["modality", "modality", "modality", "pooled"],
        ...                       "agreement": [0.1, 0.9, 0.5, 1.0], "agreement_z": [-0.5, 4.0, float("nan"), 80.0]})
        >>> suspect_structures(table, StructureScale.of(table, "agreement"), 5)["case_id"].tolist()
        ['b', 'a']
    """
    return _ranked(structures[judged(structures)], scale).head(count)


def unjudged_structures(structures: pd.DataFrame, scale: StructureScale) -> pd.DataFrame:
    """The structures not judged against enough cases of their class and modality, by the same order (``pooled`` first)."""
    apart = structures[~judged(structures)]
    return _ranked(apart, scale, first=[apart["judged_against"] != "pooled"] if len(apart) else [])


def _ranked(structures: pd.DataFrame, scale: StructureScale, first: list | None = None) -> pd.DataFrame:
    """Highest score first, as :func:`~auvcore.scales.rank_value` rounds it; ties by case and structure."""
    defined = structures[pd.to_numeric(structures[scale.column], errors="coerce").notna()]
    keys = [scale.column] + ([scale.by] if scale.by in structures.columns and scale.by != scale.column else [])
    ordered = defined.sort_values([c for c in ("case_id", "class") if c in defined.columns], kind="stable")
    ordered = ordered.sort_values(keys, ascending=False, kind="stable",
                                  key=lambda column: pd.to_numeric(column, errors="coerce").round(RANK_DECIMALS))
    if first:  # a grouping column before the score (``pooled`` before ``none``)
        ordered = ordered.assign(_group=first[0].reindex(ordered.index)).sort_values("_group", kind="stable").drop(columns="_group")
    return ordered


def _number(value, digits: int = 3) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _swatch(rgb: tuple[float, float, float]) -> str:
    hex_colour = "#" + "".join(f"{round(c * 255):02x}" for c in rgb)
    return f"<span class='swatch' style='background:{hex_colour}'></span>"


@dataclass(frozen=True)
class WhereToLook:
    """A structure's worst slice (index along axis 0 of the LPS volume), the per-slice score that chose it, and the
    LPS centre (mm) of the structure's voxels on it (r and a None for a case recorded before those centres were)."""

    slice: int | None
    scorer: str | None
    centre: tuple[float | None, float | None, float | None]

    def slice_text(self) -> str:
        return "" if self.slice is None else f"{self.slice} ({self.scorer})" if self.scorer else str(self.slice)

    def centre_text(self) -> str:
        r, a, s = self.centre
        if s is None:
            return ""
        if r is None or a is None:
            return f"s {s:.1f} (the slice's; this case's record predates structure centres)"
        return f"{r:.1f}, {a:.1f}, {s:.1f}"


def where_to_look(row: pd.Series, scale: StructureScale, record: CaseRecord | None) -> WhereToLook:
    """Where to send a reviewer: the worst slice by the ranking score where it has per-slice values, else
    ``structures.csv``'s (by the per-slice score under which the structure is most unusual), and the structure there."""
    info = SCORER_INFO.get(scale.by)
    if record is not None and info is not None and info.per_slice:
        found = worst_slice(record, str(row["class"]), [scale.by])
        if found:
            return WhereToLook(found[1], found[0], worst_slice_centre(record, str(row["class"]), found[1]))
    index = row.get("worst_slice")
    if index is None or pd.isna(index):
        return WhereToLook(None, None, (None, None, None))
    r, a, s = (None if pd.isna(row.get(c)) else float(row[c]) for c in ("worst_lps_r", "worst_lps_a", "worst_lps_s"))
    scorer = row.get("worst_slice_scorer")
    return WhereToLook(int(index), None if scorer is None or pd.isna(scorer) else str(scorer), (r, a, s))


def _worst_slice_note(scale: StructureScale) -> str:
    """What the suspect table's worst slice is chosen by, said on the page."""
    info = SCORER_INFO.get(scale.by)
    if info is not None and info.per_slice:
        return f"The worst slice is the slice of the structure's highest per-slice {html.escape(scale.by)}"
    return (f"{html.escape(scale.by)} has no per-slice values, so the worst slice is that of the per-slice score under which the "
            "structure is most unusual (named beside it)")


class _Records:
    """Case records read once each, for the rows that need them (None where a record cannot be read)."""

    def __init__(self, results_dir: Path) -> None:
        self.folder, self.read = ResultsFolder(results_dir), {}

    def __call__(self, case_id: str) -> CaseRecord | None:
        if case_id not in self.read:
            try:
                self.read[case_id] = read_case_record(self.folder.case_json(case_id))
            except InputError:
                self.read[case_id] = None
        return self.read[case_id]


def _structure_link(case_id: str, class_name: str, case_pages: dict[str, str]) -> str:
    """The case id, linked to the structure's place on its case page where it has one."""
    if case_id not in case_pages:
        return html.escape(case_id)
    return f"<a href='{html.escape(case_pages[case_id])}#{structure_anchor(class_name)}'>{html.escape(case_id)}</a>"


def _suspect_table(suspects: pd.DataFrame, scale: StructureScale, review: Review, case_pages: dict[str, str],
                   records: _Records) -> str:
    """The most suspect structures: where to look (worst slice, the structure's LPS centre) and any verdict already given."""
    if suspects.empty:
        return (f"<p>No structure judged against at least {MIN_CASES_PER_MODALITY} cases of its class and modality has a value "
                f"of {html.escape(scale.column)}.</p>")
    value_name = "S" if scale.by == PAPER_SCORER else scale.by
    value_column = scale.by if scale.by in suspects.columns and scale.column != scale.by else None
    rows = []
    for rank, (_, row) in enumerate(suspects.iterrows(), start=1):
        case_id = str(row["case_id"])
        where = where_to_look(row, scale, records(case_id))
        verdict = review.get(case_id, str(row["class"]))
        rows.append(
            f"<tr><td>{rank}</td><td class='case'>{_structure_link(case_id, str(row['class']), case_pages)}</td>"
            f"<td>{_swatch(scale.colour(float(row[scale.column])))}{html.escape(str(row['class']))}</td>"
            f"<td class='number'>{_number(row[value_column]) if value_column else ''}</td>"
            f"<td class='number'>{_number(row[scale.column], 2)}</td>"
            f"<td class='number'>{html.escape(where.slice_text())}</td><td>{html.escape(where.centre_text())}</td>"
            f"<td>{'' if verdict is None else html.escape(verdict.describe())}</td></tr>")
    judged_by = "probability" if scale.column == DETECTOR_COLUMN else "z"
    return (f"<table><tr><th>#</th><th>case</th><th>class</th><th>{html.escape(value_name)}</th><th>{judged_by}</th>"
            "<th>worst slice (chosen by)</th><th>the structure there, LPS mm</th><th>verdict</th></tr>" + "".join(rows) + "</table>")


def _unjudged_table(apart: pd.DataFrame, scale: StructureScale, count: int, case_pages: dict[str, str],
                    holders: pd.Series) -> str:
    """The structures ranked apart: their value and z (against too few or other-modality cases) and why;
    ``holders``: class -> how many cases of the cohort hold it."""
    value_column = scale.by if scale.by in apart.columns and scale.column != scale.by else None
    rows = []
    for _, row in apart.head(count).iterrows():
        modality = None if pd.isna(row.get("modality")) else str(row["modality"])
        own = row.get("modality_cases")
        why = unjudged_reason(str(row["judged_against"]), 0 if own is None or pd.isna(own) else int(own), modality, str(row["class"]),
                              int(holders.get(row["class"], 0)))
        rows.append(f"<tr><td class='case'>{_structure_link(str(row['case_id']), str(row['class']), case_pages)}</td>"
                    f"<td>{html.escape(str(row['class']))}</td><td>{html.escape(modality or '?')}</td>"
                    f"<td class='number'>{_number(row[value_column]) if value_column else ''}</td>"
                    f"<td class='number muted'>{_number(row[scale.column], 2)}</td><td>{html.escape(why)}</td></tr>")
    more = f"<p>And {len(apart) - count} more: every structure's <code>judged_against</code> is in structures.csv.</p>" if len(apart) > count else ""
    return ("<table><tr><th>case</th><th>class</th><th>modality</th><th>" + html.escape("S" if scale.by == PAPER_SCORER else scale.by)
            + "</th><th>its z (not comparable)</th><th>why</th></tr>" + "".join(rows) + "</table>" + more)


def class_distributions(structures: pd.DataFrame, scale: StructureScale) -> Figure:
    """Each case's value of the chosen score per class as a point, with a box where at least :data:`MIN_BOX_CASES`
    cases hold the class (a box of 2 or 3 points only looks like a distribution); most suspect class at the top.

    The axis is fitted to the values (not 0 to 1), so that the differences between cases show.
    """
    values = {name: pd.to_numeric(part[scale.column], errors="coerce").dropna().to_numpy(dtype=np.float64)
              for name, part in structures.groupby("class", sort=True)}
    per_class = {name: v for name, v in values.items() if v.size}
    order = sorted(per_class, key=lambda name: float(per_class[name].max()))
    figure = Figure(figsize=(7.0, 1.0 + 0.24 * len(order)))
    axes = figure.add_subplot()
    points = [per_class[name] for name in order]
    boxed = [row for row, v in enumerate(points, start=1) if v.size >= MIN_BOX_CASES]
    if boxed:
        axes.boxplot([points[row - 1] for row in boxed], positions=boxed, orientation="horizontal", widths=0.6,
                     showfliers=False, medianprops={"color": "#c44e52"})
    rng = np.random.default_rng(0)  # fixed jitter: the same report for the same results
    for row, values_of_class in enumerate(points, start=1):
        axes.scatter(values_of_class, row + rng.uniform(-0.18, 0.18, values_of_class.size), s=14, zorder=3,
                     c=[scale.colour(v) for v in values_of_class], edgecolors="#333", linewidths=0.3)
    axes.set_yticks(range(1, len(order) + 1), [f"{name} (n = {per_class[name].size})" for name in order], fontsize=7)
    axes.set_ylim(0.4, len(order) + 0.6)
    every = np.concatenate(points)
    low, high = float(every.min()), float(every.max())
    margin = max(0.05 * (high - low), 0.02 * max(abs(low), abs(high), 1e-3))
    axes.set_xlim(low - margin, high + margin)
    if scale.column != DETECTOR_COLUMN and low < 0 < high:
        axes.axvline(0.0, color="#999", linewidth=0.8, linestyle=":")
    boxes = f"; boxes where {MIN_BOX_CASES} or more cases hold the class" if boxed else ""
    axes.set_xlabel(f"{scale.label}; axis fitted to the values{boxes}")
    return figure


def _middle_slice(depth: int, labels: np.ndarray | None) -> int:
    """The middle axial slice of the labelled extent (of the volume when nothing is labelled)."""
    if labels is not None:
        labelled = np.flatnonzero(labels.reshape(depth, -1).any(axis=1))
        if labelled.size:
            return int(labelled[labelled.size // 2])
    return depth // 2


def structure_overlay(labels: np.ndarray, colours: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """RGBA of a label slice: each labelled class in its colour (grey when it has none), transparent elsewhere.

    Example:
        >>> overlay = structure_overlay(np.array([[0, 1, 2]]), {1: (1.0, 0.0, 0.0)})
        >>> overlay[0, :, 3].tolist(), overlay[0, 1, :3].tolist(), tuple(overlay[0, 2, :3].tolist()) == UNDEFINED_COLOUR
        ([0.0, 1.0, 1.0], [1.0, 0.0, 0.0], True)
    """
    overlay = np.zeros((*labels.shape, 4))
    for class_id in np.unique(labels[labels > 0]):
        overlay[labels == class_id] = (*colours.get(int(class_id), UNDEFINED_COLOUR), 1.0)
    return overlay


def case_thumbnail(record: CaseRecord, results_dir: Path, structures: pd.DataFrame, scale: StructureScale) -> Figure:
    """The worst slice of the case's most suspect structure, each labelled class coloured by its value on ``scale``.

    ``structures`` are the case's rows of ``structures.csv``. Axial slice in
    radiological view (patient's right on the left), CT window or MR
    percentiles as in scoring; the slice is the middle of the labelled extent
    when no structure has a worst slice. Classes without a value, or not judged
    against enough cases of their class and modality, are grey.
    Relative paths in the record that do not exist from here are tried inside ``results_dir``.
    """
    label = None if record.label is None else ResultsFolder(results_dir).recorded_path(record.label)
    case = load_case(ResultsFolder(results_dir).recorded_path(record.image), label)
    worst = suspect_structures(structures[structures["worst_slice"].notna()], scale, 1) if "worst_slice" in structures else structures.iloc[:0]
    comparable = structures[judged(structures)]
    if len(worst) and int(worst["worst_slice"].iloc[0]) < case.image.shape[0]:
        index = int(worst["worst_slice"].iloc[0])
        title = f"slice {index} of 0-{case.image.shape[0] - 1}: worst of {worst['class'].iloc[0]}"
    else:
        index = _middle_slice(case.image.shape[0], case.labels)
        title = f"slice {index} of 0-{case.image.shape[0] - 1}"
    grey = normalise_intensity(case.image[index], detect_modality(case.image))
    aspect = case.spacing[1] / case.spacing[2]
    height, width = grey.shape
    figure = Figure(figsize=(3.2, max(1.5, 3.2 * height * aspect / width)))
    axes = figure.add_subplot()
    shown = {"aspect": aspect, "interpolation": "nearest"}
    axes.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0, **shown)
    if case.labels is not None:
        colours = {int(row["class_id"]): scale.colour(float(row[scale.column])) for _, row in comparable.iterrows()
                   if pd.notna(row[scale.column])}
        axes.imshow(structure_overlay(case.labels[index], colours), alpha=0.7, **shown)
        bar = figure.colorbar(scale.colorbar_map(), ax=axes, fraction=0.046, pad=0.03,
                              extend="both" if scale.column != DETECTOR_COLUMN else "neither")
        bar.set_label(f"{scale.column} (grey: none, or not judged)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    axes.set_title(title, fontsize=8)
    axes.set_axis_off()
    return figure


def _decision_text(decision: Decision | None) -> str:
    if decision is None:
        return ""
    verb = "excluded" if decision.action == "exclude" else "included by hand"
    reason = "" if decision.action == "include" else f" ({decision.reason})"
    note = f": {decision.note}" if decision.note else ""
    return f"{verb}{reason}{note}"


def _thumbnail_cell(results_dir: Path, case_id: str, structures: pd.DataFrame, scale: StructureScale) -> str:
    path = ResultsFolder(results_dir).case_json(case_id)
    if not path.is_file():
        return f"<span class='missing'>no case record {html.escape(str(path))}</span>"
    try:
        figure = case_thumbnail(read_case_record(path), results_dir, structures[structures["case_id"] == case_id], scale)
    except InputError as error:
        return f"<span class='missing'>thumbnail unavailable: {html.escape(str(error))}</span>"
    return f"<img alt='worst slice of {html.escape(case_id)}' src='{png_data_uri(figure)}'>"


def _most_suspect_classes(case_structures: pd.DataFrame, scale: StructureScale, count: int = 3) -> str:
    worst = suspect_structures(case_structures, scale, count)
    return ", ".join(f"{_swatch(scale.colour(float(row[scale.column])))}{html.escape(str(row['class']))} "
                     f"{float(row[scale.column]):.2f}" for _, row in worst.iterrows())


def _top_cases(scored: pd.DataFrame, top: int) -> pd.DataFrame:
    return scored.sort_values("auv", ascending=False).head(top)


def _case_cell(case_id: str, case_pages: dict[str, str]) -> str:
    """The case id, linked to its page where it has one."""
    if case_id not in case_pages:
        return html.escape(case_id)
    return f"<a href='{html.escape(case_pages[case_id])}'>{html.escape(case_id)}</a>"


def _top_table(results_dir: Path, scored: pd.DataFrame, decisions: dict[str, Decision], top: int,
               case_pages: dict[str, str], structures: pd.DataFrame, scale: StructureScale) -> str:
    rows = []
    for rank, (_, row) in enumerate(_top_cases(scored, top).iterrows(), start=1):
        decision = decisions.get(row["case_id"])
        css = " class='excluded'" if decision is not None and decision.action == "exclude" else ""
        s_total = f"{row['S']:.3f}" if "S" in row and pd.notna(row["S"]) else ""
        mine = structures[structures["case_id"] == row["case_id"]]
        rows.append(
            f"<tr{css}><td>{rank}</td><td class='case'>{_case_cell(row['case_id'], case_pages)}</td><td>{row['auv']:.3f}</td>"
            f"<td>{s_total}</td><td>{_most_suspect_classes(mine, scale)}</td><td>{html.escape(_decision_text(decision))}</td>"
            f"<td>{_thumbnail_cell(results_dir, row['case_id'], structures, scale)}</td></tr>"
        )
    return (f"<table><tr><th>#</th><th>case</th><th>AUV</th><th>S</th><th>most suspect ({html.escape(scale.column)})</th>"
            "<th>decision</th><th>worst slice, structures coloured by their value</th></tr>" + "".join(rows) + "</table>")


def _decision_list(decisions: Iterable[Decision]) -> str:
    rows = [
        f"<tr class='excluded'><td>{html.escape(d.case_id)}</td><td>{'' if d.auv is None else f'{d.auv:.3f}'}</td>"
        f"<td>{d.reason}</td><td>{html.escape(d.note)}</td><td>{html.escape(d.time)}</td></tr>"
        for d in sorted(decisions, key=lambda d: -1.0 if d.auv is None else -d.auv)
    ]
    if not rows:
        return "<p>No case is excluded.</p>"
    return ("<table><tr><th>case</th><th>AUV</th><th>reason</th><th>note</th><th>time</th></tr>"
            + "".join(rows) + "</table>")


def _review_list(results_dir: Path) -> str:
    """The reviewers' verdicts on structures (``review.json``, written by the Slicer module's review queue)."""
    review = load_review(ResultsFolder(results_dir).review)
    if not review.verdicts:
        return "<p>No structure has a verdict yet (review them in the Slicer module).</p>"
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in review.counts().items())
    rows = [f"<tr><td>{html.escape(v.case_id)}</td><td>{html.escape(v.structure)}</td><td>{_verdict_cell(v)}</td>"
            f"<td>{html.escape(v.note)}</td><td>{html.escape(v.time)}</td></tr>"
            for v in sorted(review.verdicts.values(), key=lambda v: (v.verdict != "needs_fix", v.case_id, v.structure))]
    return (f"<p>{len(review.verdicts)} structures reviewed: {counts}.</p><table><tr><th>case</th><th>structure</th>"
            "<th>verdict</th><th>note</th><th>time</th></tr>" + "".join(rows) + "</table>")


def _correction_anchor(case_id: str) -> str:
    return f"correction-{safe_file_name(case_id)}"


def _verdict_cell(verdict: Verdict) -> str:
    """A ``fixed`` verdict links to its correction in the Corrections section."""
    if verdict.verdict != FIXED:
        return verdict.verdict
    return f"<a href='#{_correction_anchor(verdict.case_id)}'>{FIXED}</a> ({html.escape(verdict.correction)})"


def _score_change(correction: Correction, structure: str, structures: pd.DataFrame, scale: StructureScale,
                  rescored: bool) -> str:
    """The structure's review score when the correction was saved, and now where the case was rescored with it."""
    before = correction.scores_before.get(structure, {}).get(scale.column)
    text = "n/a" if before is None else f"{before:.2f}"
    if not rescored:
        return f"{text} → not rescored yet"
    row = structures[(structures["case_id"] == correction.case_id) & (structures["class"] == structure)]
    after = row[scale.column].iloc[0] if len(row) and scale.column in row else None
    return f"{text} → {'n/a' if after is None or pd.isna(after) else f'{after:.2f}'}"


def _corrections_list(results_dir: Path, results: pd.DataFrame, structures: pd.DataFrame, scale: StructureScale) -> str:
    """Every case's current correction: its changed structures, their voxels and Dice to the original, the score
    before -> after, who saved it and when (``review.json``, :mod:`auvcore.results.corrections`)."""
    folder = ResultsFolder(results_dir)
    corrections = load_corrections(folder)
    if not corrections:
        return ("<p>No label is corrected yet (Fix and Save correction in the Slicer module's review write "
                "<code>corrections/</code>).</p>")
    labels = dict(zip(results["case_id"].astype(str), results["label"].astype(str))) if "label" in results else {}
    rows = []
    for case_id in sorted(corrections):
        current = corrections[case_id][-1]
        rescored = os.path.abspath(folder.recorded_path(labels.get(case_id, ""))) == os.path.abspath(folder.root / current.file)
        for number, change in enumerate(current.changes):
            anchor = f" id='{_correction_anchor(case_id)}'" if number == 0 else ""
            rows.append(
                f"<tr{anchor}><td>{html.escape(case_id)}</td><td>{html.escape(change.structure)}</td>"
                f"<td class='number'>+{change.added} / -{change.removed}</td>"
                f"<td class='number'>{'n/a' if change.dice is None else f'{change.dice:.3f}'}</td>"
                f"<td class='number'>{html.escape(_score_change(current, change.structure, structures, scale, rescored))}</td>"
                f"<td>{html.escape(current.reviewer)}</td><td>{html.escape(current.time)}</td>"
                f"<td>{html.escape(current.file)}{' (proposal accepted)' if current.proposal else ''}</td></tr>")
    return (f"<p>{len(corrections)} case(s) have a corrected label, which <code>auv filter</code>, the exports and "
            "<code>auv train</code> use unless given <code>--original-labels</code>. Voxels added / removed and the Dice "
            f"are against the source label; the score is {html.escape(scale.column)}, when the correction was saved → "
            "after rerunning <code>auv score</code> on the folder (which rescores the corrected cases only).</p>"
            "<table><tr><th>case</th><th>structure</th><th>voxels</th><th>Dice to the original</th>"
            f"<th>{html.escape(scale.column)} before → after</th><th>reviewer</th><th>saved</th><th>file</th></tr>"
            + "".join(rows) + "</table>")


def _failed_list(results: pd.DataFrame, scored_ids: set[str]) -> str:
    failed = results[~results["case_id"].isin(scored_ids)]
    if failed.empty:
        return "<p>Every case was scored.</p>"
    rows = [
        f"<tr><td>{html.escape(row['case_id'])}</td><td>{html.escape(str(row.get('status', '')))}</td>"
        f"<td>{html.escape(str(row.get('error', '')) if pd.notna(row.get('error')) else '')}</td></tr>"
        for _, row in failed.iterrows()
    ]
    return ("<p>These cases have no AUV: the quantile neither keeps nor excludes them, and they are "
            "not retained unless included by hand.</p><table><tr><th>case</th><th>status</th><th>error</th></tr>"
            + "".join(rows) + "</table>")


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: middle; font-size: 0.9em; }
tr.excluded { background: #fbe3e4; }
tr.excluded td.case { text-decoration: line-through; }
.missing { color: #a00; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { font-weight: bold; }
td.number { text-align: right; font-family: monospace; }
.muted { color: #888; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em; border: 1px solid #555; vertical-align: middle; }
"""


@dataclass(frozen=True)
class Ranking:
    """What the page ranks structures by, and why (``--by``, or the default's reason)."""

    structures: pd.DataFrame
    source: str
    scale: StructureScale
    why: str
    listed: pd.DataFrame
    apart: pd.DataFrame

    @classmethod
    def of(cls, results_dir: Path, results: pd.DataFrame, exclusions: ExclusionList, by: str | None, suspects: int) -> "Ranking":
        """The ranking of a results folder; InputError naming ``structures.csv`` for a ``by`` it has no column for."""
        structures, source = cohort_structures(results_dir, results)
        chosen, why = (by, "chosen with --by") if by else default_by_reason(structures, exclusions)
        scale = StructureScale.of(structures, chosen, source)
        return cls(structures, source, scale, why, suspect_structures(structures, scale, suspects), unjudged_structures(structures, scale))

    def flagged(self, records: _Records, apart: int) -> dict[str, list[FlaggedStructure]]:
        """Case id -> its listed structures (and the first ``apart`` of those ranked apart), each at the worst slice
        the cohort page names, as its case page shows them first."""
        flagged: dict[str, list[FlaggedStructure]] = {}
        rows = [(f"#{rank} of the cohort report, ranked by {self.scale.by}", row)
                for rank, (_, row) in enumerate(self.listed.iterrows(), start=1)]
        rows += [(f"listed apart in the cohort report ({row['judged_against']}: too few cases of its class and modality)", row)
                 for _, row in self.apart.head(apart).iterrows()]
        for what, row in rows:
            case_id = str(row["case_id"])
            where = where_to_look(row, self.scale, records(case_id))
            text = f"{what}: {self.scale.column} {float(row[self.scale.column]):.2f}" + (
                f"; worst slice by {where.scorer}" if where.scorer else "")
            flagged.setdefault(case_id, []).append(FlaggedStructure(str(row["class"]), text, where.slice))
        return flagged


def render_report(results_dir: Path, results: pd.DataFrame, exclusions: ExclusionList, keep: float, top: int,
                  case_pages: dict[str, str] | None = None, by: str | None = None,
                  suspects: int = DEFAULT_SUSPECTS) -> str:
    """The report's HTML text (see :func:`write_report`); ``case_pages``: case id -> link to its page."""
    ranking = Ranking.of(results_dir, results, exclusions, by, suspects)
    return _render(results_dir, results, exclusions, keep, top, case_pages or {}, ranking, suspects)


def class_set_note(results: pd.DataFrame, results_dir: Path) -> str | None:
    """The class-count warning of ``auv score`` where the AUV is the paper's sum over cases of different class sets."""
    aggregate = "paper"
    try:
        aggregate = str(json.loads(ResultsFolder(results_dir).reference.read_text(encoding="utf-8")).get("aggregate", "paper"))
    except (OSError, ValueError, AttributeError):
        pass  # no reference (or not one): the AUV column is the paper's, as auv score writes it by default
    if aggregate != "paper":
        return None
    scored = scored_cases(results)
    counts = scored[[c for c in scored.columns if c.startswith("S_")]].notna().sum(axis=1)
    counts = counts[counts > 0]
    return class_set_advice(int(counts.min()), int(counts.max())) if counts.nunique() > 1 else None


def _render(results_dir: Path, results: pd.DataFrame, exclusions: ExclusionList, keep: float, top: int,
            case_pages: dict[str, str], ranking: Ranking, suspects: int) -> str:
    structures, scale, listed, apart = ranking.structures, ranking.scale, ranking.listed, ranking.apart
    scored = scored_cases(results)
    threshold = quantile_threshold(scored["auv"], keep) if len(scored) else None
    decisions = exclusions.effective()
    excluded_ids = exclusions.excluded()
    excluded_auv = scored.loc[scored["case_id"].isin(excluded_ids), "auv"].to_numpy(dtype=np.float64)
    first = results.iloc[0] if len(results) else pd.Series(dtype=object)
    comparable = int(judged(structures).sum())
    facts = {
        "cases": len(results),
        "scored": len(scored),
        "failed": len(results) - len(scored),
        "backbone / mode": f"{first.get('backbone', '?')} / {first.get('mode', '?')}",
        "keep p": f"{keep:g}",
        "threshold F⁻¹(p)": "none (no scored case)" if threshold is None else f"{threshold:.4f}",
        "excluded": f"{len(excluded_ids)} ({len(exclusions.quantile)} by quantile rule, "
                    f"{sum(d.reason == 'manual' for d in decisions.values() if d.action == 'exclude')} by hand)",
        "retained": len(retained_cases(results, exclusions)),
        "structures ranked by": f"{scale.by} ({ranking.why}): {scale.label}, from {ranking.source}",
        "structures judged": f"{comparable} of {len(structures)} against at least {MIN_CASES_PER_MODALITY} cases of their class "
                             f"and modality; the other {len(structures) - comparable} are not ranked with them",
    }
    note = class_set_note(results, results_dir)
    if note:
        facts["AUV note"] = note
    facts["generated"] = f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} by auvcore {tool_version()}"
    sections = [f"<h1>AUV cohort report: {html.escape(results_dir.name)}</h1>",
                "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items()) + "</dl>"]
    if len(scored):
        histogram = auv_histogram(scored["auv"].to_numpy(dtype=np.float64), threshold, keep, excluded_auv)
        sections.append(f"<h2>AUV distribution</h2><img alt='AUV histogram' src='{png_data_uri(histogram)}'>")
    records = _Records(results_dir)
    sections.append(f"<h2>Most suspect structures (top {len(listed)} of {comparable}, ranked by {html.escape(scale.column)})</h2>"
                    f"<p>Ranked by {html.escape(scale.by)} ({html.escape(ranking.why)}). {html.escape(scale.label)}. Only structures "
                    f"judged against at least {MIN_CASES_PER_MODALITY} cases of their class and modality are ranked here. "
                    f"{_worst_slice_note(scale)}; its index is along the first axis of the LPS-oriented volume (as in Slicer's "
                    "review queue), and the structure's centre on it is in LPS millimetres. Each case links to its page, "
                    "at the structure.</p>")
    sections.append(_suspect_table(listed, scale, load_review(ResultsFolder(results_dir).review), case_pages, records))
    if len(apart):
        sections.append(f"<h2>Structures not judged against their own modality ({len(structures) - comparable}; "
                        f"{len(apart)} with a value of {html.escape(scale.column)})</h2>"
                        f"<p>Fewer than {MIN_CASES_PER_MODALITY} cases of their class and modality hold these, so their z is "
                        "against the cohort's cases of other modalities, or against almost none: it says how unlike other "
                        "scans they are, not whether their label is wrong. They are not ranked with the structures above. "
                        "Score more cases of their modality to judge them.</p>")
        sections.append(_unjudged_table(apart, scale, suspects, case_pages, structures.groupby("class").size()))
    shown = structures[judged(structures)]
    if shown[scale.column].notna().any():
        sections.append(f"<h2>Per-class {html.escape(scale.column)}</h2><p>Structures judged against their own modality.</p>"
                        f"<img alt='per-class {html.escape(scale.column)}' src='{png_data_uri(class_distributions(shown, scale))}'>")
    sections.append(f"<h2>Highest-AUV cases (top {min(top, len(scored))})</h2>")
    if note:
        sections.append(f"<p class='missing'>{html.escape(note[0].upper() + note[1:])}.</p>")
    sections.append(_top_table(results_dir, scored, decisions, top, case_pages, structures, scale))
    sections.append("<h2>Excluded cases</h2>")
    sections.append(_decision_list(d for d in decisions.values() if d.action == "exclude"))
    sections.append("<h2>Annotation review</h2>")
    sections.append(_review_list(results_dir))
    sections.append("<h2 id='corrections'>Corrections</h2>")
    sections.append(_corrections_list(results_dir, results, structures, scale))
    sections.append("<h2>Cases without AUV</h2>")
    sections.append(_failed_list(results, set(scored["case_id"])))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>AUV report: {html.escape(results_dir.name)}</title><style>{_STYLE}</style></head>"
            "<body>" + "\n".join(sections) + "</body></html>\n")


def write_report(
    results_dir: str | Path,
    out_html: str | Path,
    keep: float | None = None,
    exclusions: ExclusionList | None = None,
    top: int = DEFAULT_TOP,
    by: str | None = None,
    suspects: int = DEFAULT_SUSPECTS,
) -> Path:
    """Write the HTML report of a results folder (atomically) and return its path.

    Args:
        results_dir: a folder written by ``auv score`` (results.csv, cases/).
        keep: the quantile's keep fraction p; by default the one of the last
            ``auv filter`` (from the exclusion list), else 0.95.
        exclusions: the decisions to show; by default ``exclusions.json`` in
            ``results_dir`` (none when it does not exist).
        top: how many of the highest-AUV cases to show with thumbnails.
        by: what structures are ranked and coloured by: a scorer (its ``_z``
            column of ``structures.csv``) or ``detector``; by default the
            detector where the cohort has one, else the review score
            ``label_check`` where it was scored, else the last filter's
            ``--by`` where structures have its z, else ``auv``.
        suspects: how many of the most suspect structures to list.

    Raises:
        InputError: naming the file, for a missing or malformed results.csv,
            exclusion list or case record, or a ``by`` that ``structures.csv``
            has no column for. A case whose image cannot be read
            gets a message in place of its thumbnail instead.
    """
    results_dir = Path(results_dir)
    results = read_results(results_dir)
    if exclusions is None:
        exclusions = load_exclusions(ResultsFolder(results_dir).exclusions)
    if keep is None:
        keep = exclusions.rule.keep if exclusions.rule is not None else DEFAULT_KEEP
    out_html = Path(out_html)
    ranking = Ranking.of(results_dir, results, exclusions, by, suspects)  # refused before any page is written
    case_pages = write_case_pages(results_dir, scored_cases(results), top, out_html, also=ranking.flagged(_Records(results_dir), suspects))
    page = _render(results_dir, results, exclusions, keep, top, case_pages, ranking, suspects)
    atomic_write_bytes(out_html, page.encode("utf-8"))
    return out_html


def write_case_pages(results_dir: Path, scored: pd.DataFrame, top: int, out_html: Path,
                     also: dict[str, list[FlaggedStructure]] | None = None) -> dict[str, str]:
    """A page per case of the top table and per case in ``also`` (the listed structures' cases; each page shows its
    listed structures first, at their worst slice) (:mod:`auvcore.explain.case_page`) in ``<report>_cases/``; case id -> link."""
    folder, pages = ResultsFolder(results_dir), out_html.with_name(out_html.stem + "_cases")
    also = also or {}
    links = {}
    for case_id in dict.fromkeys([*_top_cases(scored, top)["case_id"].astype(str), *also]):
        if folder.case_json(case_id).is_file():
            page = write_case_page(folder, case_id, pages / f"{safe_file_name(case_id)}.html", f"../{out_html.name}",
                                   flagged=also.get(case_id, ()))
            links[case_id] = f"{pages.name}/{page.name}"
    return links
