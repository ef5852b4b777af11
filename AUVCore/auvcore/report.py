"""The cohort report: one self-contained HTML page (PNG images embedded as base64).

It shows the AUV histogram with the quantile threshold F^-1(p), the per-class
S distributions, a table of the highest-AUV cases with a mid-slice thumbnail
whose label overlay is coloured by per-class uncertainty U = 1 - S, the
excluded cases (marked in the table and listed with their reasons), and the
cases whose scoring failed. Plots use matplotlib's object API (no pyplot), so
the report never changes the caller's matplotlib backend (Slicer's included).

Example:
    >>> write_report("results", "results/report.html", keep=0.9)  # doctest: +SKIP
    PosixPath('results/report.html')
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .curation import Decision, ExclusionList, load_exclusions, quantile_threshold, retained_cases, scored_cases, tool_version
from .errors import InputError
from .explain.case_page import write_case_page
from .figures import png_data_uri
from .files import atomic_write_bytes
from .imaging import detect_modality, load_case, normalise_intensity
from .results import CaseRecord, ClassRecord, ResultsFolder, read_case_record, read_results, safe_file_name
from .results.review import load_review

#: The keep fraction used when neither the caller nor a previous filter gives one (the paper's default).
DEFAULT_KEEP = 0.95
#: How many of the highest-AUV cases the table shows.
DEFAULT_TOP = 12
#: Perceptual colour map for U (dark = certain, bright = uncertain).
UNCERTAINTY_CMAP = "viridis"
#: Colour of labelled voxels whose class has no defined U (too few slices): red, which viridis lacks.
UNDEFINED_COLOUR = "#e8463a"


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


def class_scale_distributions(per_class: dict[str, np.ndarray]) -> Figure:
    """One box (with the individual cases as points) of S(Z|c) per class, lowest median at the top."""
    order = sorted(per_class, key=lambda name: float(np.median(per_class[name])), reverse=True)
    figure = Figure(figsize=(7.0, 1.0 + 0.24 * len(order)))
    axes = figure.add_subplot()
    values = [per_class[name] for name in order]
    axes.boxplot(values, orientation="horizontal", widths=0.6, showfliers=False, medianprops={"color": "#c44e52"})
    rng = np.random.default_rng(0)  # fixed jitter: the same report for the same results
    for row, points in enumerate(values, start=1):
        axes.plot(points, row + rng.uniform(-0.18, 0.18, points.size), ".", color="#4c72b0", alpha=0.6, markersize=4)
    axes.set_yticks(range(1, len(order) + 1), [f"{name} (n={per_class[name].size})" for name in order], fontsize=7)
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("S(Z|c): semantic perception scale (low = hard / noisy)")
    return figure


def _middle_slice(depth: int, labels: np.ndarray | None) -> int:
    """The middle axial slice of the labelled extent (of the volume when nothing is labelled)."""
    if labels is not None:
        labelled = np.flatnonzero(labels.reshape(depth, -1).any(axis=1))
        if labelled.size:
            return int(labelled[labelled.size // 2])
    return depth // 2


def uncertainty_layers(labels: np.ndarray, classes: Iterable[ClassRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Per-voxel U of the voxel's class (NaN off the labels), and the mask of classes without U.

    Example:
        >>> u, undefined = uncertainty_layers(np.array([[0, 1, 2]]), [ClassRecord(1, "liver", 0.8, 5), ClassRecord(2, "spleen", None, 1)])
        >>> u.round(2).tolist(), undefined.tolist()
        ([[nan, 0.2, nan]], [[False, False, True]])
    """
    by_id = {c.id: c.U for c in classes}
    u_map = np.full(labels.shape, np.nan)
    undefined = np.zeros(labels.shape, dtype=bool)
    for class_id in np.unique(labels[labels > 0]):
        u = by_id.get(int(class_id))
        if u is None:
            undefined |= labels == class_id
        else:
            u_map[labels == class_id] = u
    return u_map, undefined


def case_thumbnail(record: CaseRecord, results_dir: Path) -> Figure:
    """Mid-slice of the image with each labelled class coloured by its U = 1 - S.

    Axial slice in radiological view (patient's right on the left), CT window
    or MR percentiles as in scoring. Classes whose U is undefined are red.
    Relative paths in the record that do not exist from here are tried inside ``results_dir``.
    """
    label = None if record.label is None else ResultsFolder(results_dir).recorded_path(record.label)
    case = load_case(ResultsFolder(results_dir).recorded_path(record.image), label)
    index = _middle_slice(case.image.shape[0], case.labels)
    grey = normalise_intensity(case.image[index], detect_modality(case.image))
    aspect = case.spacing[1] / case.spacing[2]
    height, width = grey.shape
    figure = Figure(figsize=(3.0, max(1.5, 3.0 * height * aspect / width)))
    axes = figure.add_subplot()
    shown = {"aspect": aspect, "interpolation": "nearest"}
    axes.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0, **shown)
    title = f"slice {index + 1}/{case.image.shape[0]}"
    if case.labels is not None:
        u_map, undefined = uncertainty_layers(case.labels[index], record.classes)
        if undefined.any():
            axes.imshow(np.ma.masked_where(~undefined, undefined), cmap=ListedColormap([UNDEFINED_COLOUR]), alpha=0.7, **shown)
            title += " (red: U undefined)"
        u_layer = axes.imshow(np.ma.masked_invalid(u_map), cmap=UNCERTAINTY_CMAP, vmin=0.0, vmax=1.0, alpha=0.7, **shown)
        bar = figure.colorbar(u_layer, ax=axes, fraction=0.046, pad=0.03)
        bar.set_label("U = 1 − S", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    axes.set_title(title, fontsize=8)
    axes.set_axis_off()
    return figure


def _per_class_scales(scored: pd.DataFrame) -> dict[str, np.ndarray]:
    per_class = {}
    for column in scored.columns:
        if column.startswith("S_"):
            values = pd.to_numeric(scored[column], errors="coerce").to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                per_class[column[2:]] = values
    return per_class


def _decision_text(decision: Decision | None) -> str:
    if decision is None:
        return ""
    verb = "excluded" if decision.action == "exclude" else "included by hand"
    reason = "" if decision.action == "include" else f" ({decision.reason})"
    note = f": {decision.note}" if decision.note else ""
    return f"{verb}{reason}{note}"


def _thumbnail_cell(results_dir: Path, case_id: str) -> str:
    path = ResultsFolder(results_dir).case_json(case_id)
    if not path.is_file():
        return f"<span class='missing'>no case record {html.escape(str(path))}</span>"
    try:
        figure = case_thumbnail(read_case_record(path), results_dir)
    except InputError as error:
        return f"<span class='missing'>thumbnail unavailable: {html.escape(str(error))}</span>"
    return f"<img alt='mid-slice of {html.escape(case_id)}' src='{png_data_uri(figure)}'>"


def _hardest_classes(row: pd.Series, count: int = 3) -> str:
    scales = {c[2:]: row[c] for c in row.index if c.startswith("S_") and pd.notna(row[c])}
    hardest = sorted(scales.items(), key=lambda item: item[1])[:count]
    return ", ".join(f"{html.escape(name)} {value:.3f}" for name, value in hardest)


def _top_cases(scored: pd.DataFrame, top: int) -> pd.DataFrame:
    return scored.sort_values("auv", ascending=False).head(top)


def _case_cell(case_id: str, case_pages: dict[str, str]) -> str:
    """The case id, linked to its page where it has one."""
    if case_id not in case_pages:
        return html.escape(case_id)
    return f"<a href='{html.escape(case_pages[case_id])}'>{html.escape(case_id)}</a>"


def _top_table(results_dir: Path, scored: pd.DataFrame, decisions: dict[str, Decision], top: int,
               case_pages: dict[str, str]) -> str:
    rows = []
    for rank, (_, row) in enumerate(_top_cases(scored, top).iterrows(), start=1):
        decision = decisions.get(row["case_id"])
        css = " class='excluded'" if decision is not None and decision.action == "exclude" else ""
        s_total = f"{row['S']:.3f}" if "S" in row and pd.notna(row["S"]) else ""
        rows.append(
            f"<tr{css}><td>{rank}</td><td class='case'>{_case_cell(row['case_id'], case_pages)}</td><td>{row['auv']:.3f}</td>"
            f"<td>{s_total}</td><td>{_hardest_classes(row)}</td><td>{html.escape(_decision_text(decision))}</td>"
            f"<td>{_thumbnail_cell(results_dir, row['case_id'])}</td></tr>"
        )
    return ("<table><tr><th>#</th><th>case</th><th>AUV</th><th>S</th><th>lowest S(Z|c)</th>"
            "<th>decision</th><th>mid-slice, overlay U = 1 − S</th></tr>" + "".join(rows) + "</table>")


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
    rows = [f"<tr><td>{html.escape(v.case_id)}</td><td>{html.escape(v.structure)}</td><td>{v.verdict}</td>"
            f"<td>{html.escape(v.note)}</td><td>{html.escape(v.time)}</td></tr>"
            for v in sorted(review.verdicts.values(), key=lambda v: (v.verdict != "needs_fix", v.case_id, v.structure))]
    return (f"<p>{len(review.verdicts)} structures reviewed: {counts}.</p><table><tr><th>case</th><th>structure</th>"
            "<th>verdict</th><th>note</th><th>time</th></tr>" + "".join(rows) + "</table>")


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
"""


def render_report(results_dir: Path, results: pd.DataFrame, exclusions: ExclusionList, keep: float, top: int,
                  case_pages: dict[str, str] | None = None) -> str:
    """The report's HTML text (see :func:`write_report`); ``case_pages``: case id -> link to its page."""
    scored = scored_cases(results)
    threshold = quantile_threshold(scored["auv"], keep) if len(scored) else None
    decisions = exclusions.effective()
    excluded_ids = exclusions.excluded()
    excluded_auv = scored.loc[scored["case_id"].isin(excluded_ids), "auv"].to_numpy(dtype=np.float64)
    first = results.iloc[0] if len(results) else pd.Series(dtype=object)
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
        "generated": f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} by auvcore {tool_version()}",
    }
    sections = [f"<h1>AUV cohort report: {html.escape(results_dir.name)}</h1>",
                "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items()) + "</dl>"]
    if len(scored):
        histogram = auv_histogram(scored["auv"].to_numpy(dtype=np.float64), threshold, keep, excluded_auv)
        sections.append(f"<h2>AUV distribution</h2><img alt='AUV histogram' src='{png_data_uri(histogram)}'>")
    per_class = _per_class_scales(scored)
    if per_class:
        sections.append("<h2>Per-class S distributions</h2>"
                        f"<img alt='per-class S' src='{png_data_uri(class_scale_distributions(per_class))}'>")
    sections.append(f"<h2>Highest-AUV cases (top {min(top, len(scored))})</h2>")
    sections.append(_top_table(results_dir, scored, decisions, top, case_pages or {}))
    sections.append("<h2>Excluded cases</h2>")
    sections.append(_decision_list(d for d in decisions.values() if d.action == "exclude"))
    sections.append("<h2>Annotation review</h2>")
    sections.append(_review_list(results_dir))
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
) -> Path:
    """Write the HTML report of a results folder (atomically) and return its path.

    Args:
        results_dir: a folder written by ``auv score`` (results.csv, cases/).
        keep: the quantile's keep fraction p; by default the one of the last
            ``auv filter`` (from the exclusion list), else 0.95.
        exclusions: the decisions to show; by default ``exclusions.json`` in
            ``results_dir`` (none when it does not exist).
        top: how many of the highest-AUV cases to show with thumbnails.

    Raises:
        InputError: naming the file, for a missing or malformed results.csv,
            exclusion list or case record. A case whose image cannot be read
            gets a message in place of its thumbnail instead.
    """
    results_dir = Path(results_dir)
    results = read_results(results_dir)
    if exclusions is None:
        exclusions = load_exclusions(ResultsFolder(results_dir).exclusions)
    if keep is None:
        keep = exclusions.rule.keep if exclusions.rule is not None else DEFAULT_KEEP
    out_html = Path(out_html)
    case_pages = write_case_pages(results_dir, scored_cases(results), top, out_html)
    page = render_report(results_dir, results, exclusions, keep, top, case_pages)
    atomic_write_bytes(out_html, page.encode("utf-8"))
    return out_html


def write_case_pages(results_dir: Path, scored: pd.DataFrame, top: int, out_html: Path) -> dict[str, str]:
    """A page per case of the top table (:mod:`auvcore.explain.case_page`) in ``<report>_cases/``; case id -> link."""
    folder, pages = ResultsFolder(results_dir), out_html.with_name(out_html.stem + "_cases")
    links = {}
    for case_id in _top_cases(scored, top)["case_id"]:
        if folder.case_json(case_id).is_file():
            page = write_case_page(folder, case_id, pages / f"{safe_file_name(case_id)}.html", f"../{out_html.name}")
            links[case_id] = f"{pages.name}/{page.name}"
    return links
