"""The per-case page of ``auv report``: every class's energy spectrum and the case's worst structures.

Self-contained HTML (PNGs embedded), readable in any browser without Slicer
or Python; everything comes from the case JSON and its feature cache, so no
model runs. The cohort page links to it, and it links back.

Example:
    >>> write_case_page(ResultsFolder(Path("results")), "ct", Path("report_cases/ct.html"), "../report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..figures import png_data_uri
from ..files import atomic_write_bytes
from ..results import CaseRecord, ClassRecord, ResultsFolder, read_case_record
from .cache import load_spectra
from .figures import class_panel, class_spectra, disagreement_strip, disagreement_text
from .view import CASE_LEVEL, stored_class_view

#: How many of the lowest-S structures get a panel (slice, logits, spectrum).
WORST = 4


@dataclass(frozen=True)
class FlaggedStructure:
    """A structure the cohort report lists: its page shows it first, at ``slice`` (its worst, or the middle one when None).

    Attributes:
        what: why it is shown, as the cohort report says it (e.g. ``#1 of the cohort report by label_check_z: 5.30``).
    """

    name: str
    what: str
    slice: int | None = None


def structure_anchor(class_name: str) -> str:
    """The id of a structure's place on its case page (the cohort report links to it).

    Example:
        >>> structure_anchor("lung upper/left")
        'structure-lung_upper_left'
    """
    return "structure-" + re.sub(r"[^A-Za-z0-9_-]", "_", class_name)

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; font-size: 0.85em; }
td.number { text-align: right; font-family: monospace; }
tr.worst { background: #fff3cd; }
.missing { color: #a00; }
.flagged { background: #fde2e2; }
img { max-width: 100%; height: auto; }
.wide { overflow-x: auto; max-width: 100%; }
"""


def _image(figure: Any, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='{png_data_uri(figure)}'>"


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _class_table(record: CaseRecord, ordered: list[ClassRecord], worst: set[str], flagged: set[str]) -> str:
    scorers = [name for name in record.scores if name not in CASE_LEVEL]
    head = "".join(f"<th>{html.escape(name)}</th>" for name in ["class", "S", "U = 1 − S", "slices", *scorers])
    rows = []
    for entry in ordered:
        css = " class='flagged'" if entry.name in flagged else " class='worst'" if entry.name in worst else ""
        cells = [_value(entry.S), _value(entry.U), str(entry.rows)]
        cells += [_value(record.scores[name].classes.get(entry.name)) for name in scorers]
        reason = f" <span class='missing'>({html.escape(entry.missing_reason)})</span>" if entry.missing_reason else ""
        rows.append(f"<tr{css}><td>{html.escape(entry.name)}{reason}</td>" + "".join(f"<td class='number'>{c}</td>" for c in cells) + "</tr>")
    return f"<div class='wide'><table><tr>{head}</tr>" + "".join(rows) + "</table></div>"


def _disagreement_sections(folder: ResultsFolder, record: CaseRecord, count: int) -> list[str]:
    """The disagreement maps of the ``count`` structures whose label and probe mask disagree most (none when the
    case was scored without the probe)."""
    probe = record.scores.get("probe_agreement")
    ranked = sorted(((value, name) for name, value in (probe.classes if probe else {}).items() if value is not None), reverse=True)
    sections = []
    for _, name in ranked[:count]:
        try:
            view = stored_class_view(folder, record.case_id, name, run_model=False)
        except InputError as error:
            sections.append(f"<p class='missing'>{html.escape(name)}: {html.escape(str(error))}</p>")
            continue
        figure = disagreement_strip(view)
        if figure is not None:
            sections += [f"<h3>{html.escape(name)}</h3><p>{html.escape(disagreement_text(view))}</p>",
                         _image(figure, f"{name}: where the label and the model disagree")]
    if sections:
        sections.insert(0, "<h2>Where the label and the model disagree</h2><p>Red: only the label has the structure; blue: "
                        "only the model's mask under prompts that do not follow the label; teal: that mask, the proposed "
                        f"correction (<code>auv propose RESULTS {html.escape(record.case_id)} --accept</code> saves it).</p>")
    return sections


def _panel(folder: ResultsFolder, record: CaseRecord, name: str, slice_index: int | None, anchor: bool) -> str:
    """A structure's panel (slice, logits, spectrum), or why it has none."""
    where = f" id='{structure_anchor(name)}'" if anchor else ""
    try:
        view = stored_class_view(folder, record.case_id, name, run_model=False)
        return f"<div{where}>" + _image(class_panel(view, slice_index), f"{name}: slice, logits and spectrum") + "</div>"
    except InputError as error:
        return f"<p{where} class='missing'>{html.escape(name)}: {html.escape(str(error))}</p>"


def write_case_page(folder: ResultsFolder, case_id: str, out_html: Path, cohort_href: str, worst: int = WORST,
                    flagged: Sequence[FlaggedStructure] = ()) -> Path:
    """Write the page of the scored case ``case_id`` of ``folder`` to ``out_html`` and return its path.

    ``flagged``: the structures the cohort report lists, shown first (at their worst slice) with the report's reason,
    each at the anchor :func:`structure_anchor` that the report links to; then the lowest-S structures.
    """
    case_json = folder.case_json(case_id)
    record = read_case_record(case_json)
    ordered = sorted(record.classes, key=lambda c: (c.S is None, c.S or 0.0))
    flagged_names = {item.name for item in flagged}
    hardest = [c for c in ordered if c.S is not None and c.name not in flagged_names][:worst]
    facts = (f"AUV {_value(record.auv)}, S = Σ S(Z|c) = {_value(record.S)}, {len(record.classes)} classes, "
             f"{record.backbone} / {record.mode}")
    sections = [f"<p><a href='{html.escape(cohort_href)}'>← cohort report</a></p>",
                f"<h1>Case {html.escape(record.case_id)}</h1>", f"<p>{html.escape(facts)}</p>"]
    if flagged:
        sections.append(f"<h2>Listed in the cohort report ({len(flagged)})</h2>")
        for item in flagged:
            sections.append(f"<h3>{html.escape(item.name)}</h3><p>{html.escape(item.what)}"
                            + ("" if item.slice is None else f"; shown at that slice, {item.slice}") + ".</p>")
            sections.append(_panel(folder, record, item.name, item.slice, anchor=True))
    spectra = load_spectra(case_json)
    shown = {c.name: (c.S, spectra[c.id]) for c in record.scored_classes if c.id in spectra}
    sections.append("<h2>Energy spectra of every class</h2>")
    if shown:
        sections.append("<p>Each line is one class's normalised energy distribution p of z_c (its squared singular values): how "
                        "the energy of the class's mask-logit maps spreads across its slices. A flat line spreads it over many "
                        "directions (high S); a steep drop puts it into one (low S). S says nothing of how well the model's "
                        "mask fits the label: the scorers' columns below do.</p>"
                        + _image(class_spectra(shown), f"energy spectra of the classes of {record.case_id}"))
    else:
        sections.append("<p class='missing'>This case has no feature cache (it was scored before auv explain existed); "
                        "score it again to see its spectra.</p>")
    sections.append(f"<h2>The {len(hardest)} {'other ' if flagged else ''}structures with the lowest S</h2>")
    sections += [_panel(folder, record, entry.name, None, anchor=entry.name not in flagged_names) for entry in hardest]
    sections.extend(_disagreement_sections(folder, record, worst))
    sections.append("<h2>Every class, lowest S first</h2>")
    sections.append(_class_table(record, ordered, {c.name for c in hardest}, flagged_names))
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>AUV case {html.escape(record.case_id)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>\n")
    atomic_write_bytes(out_html, page.encode("utf-8"))
    return out_html
