"""The explain page: one self-contained HTML file (its PNGs embedded) plus the same PNGs and a JSON summary beside it.

Example:
    >>> page = write_explain_page(view, Path("explain"))  # doctest: +SKIP
    >>> page.html  # doctest: +SKIP
    PosixPath('explain/ct_liver.html')
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from ..figures import png_bytes
from ..files import atomic_write_bytes, write_json_atomic
from ..results import safe_file_name
from ..scorers.registry import LABEL_CHECK, SCORER_INFO
from .figures import (
    cohort_placement,
    disagreement_strip,
    disagreement_text,
    energy_spectrum,
    logit_limit,
    slice_strip,
    spectrum_floor,
    spectrum_text,
)
from .view import ClassView

if TYPE_CHECKING:  # compare imports the audit, whose page imports the report, which imports this module
    from .compare import PlantedCopy

PNG_DPI = 110

EXPLANATION = """
<p>For one class c, the foundation model is prompted, slice by slice, with the box around the class's label
(teal). Its answer on each slice is a map of <em>mask logits</em> (blue: outside, red: inside; black line: logit 0,
the border of the model's mask). Each slice's map is one row of the matrix z<sub>c</sub>
(n<sub>c</sub> slices × N pixels, N = h·w of the logit map).</p>
<p>The squared singular values σ<sub>j</sub>² of z<sub>c</sub>, divided by their sum, share the matrix's energy among
independent directions: p<sub>j</sub>. Their Shannon entropy H, divided by its largest possible value
log min(n<sub>c</sub>, N), is the semantic perception scale S. So S measures how the energy of the class's logit maps
spreads across its slices: high when the maps vary from slice to slice in many independent ways, low when one pattern
(the same blob on every slice, or the same confident "no" around it) carries most of it. The paper reads a low S as a
structure that is hard for the model, and U = 1 − S as its aleatoric uncertainty.</p>
<p>S does not say how well the model's mask fits the label: masks that miss the label on every slice, each in its
own way, can spread their energy widely (high S), and a clean mask that fits the label on every slice can repeat one
shape (low S). The fit is shown beside S below (Dice of the model's mask and the label), and neither implies the
other.</p>
"""

DISAGREEMENT_EXPLANATION = """
<p>The model was prompted a second time with boxes that do not follow the label slice by slice (each slice's box
joined with its neighbours' and widened; the slices just beyond the label's ends get the end slice's box). Its mask,
kept to the structure, is the <em>proposed correction</em> (teal outline). Red: voxels only the label has; blue:
voxels only the model has. A label drawn too wide shows a red rim, too narrow a blue one, a shifted label red on
one side and blue on the other, a missed end slice a blue slice, a spurious blob a red island.</p>
"""

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1500px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-size: 0.9em; }
td.number { text-align: right; font-family: monospace; }
.side { display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }
.side > div { flex: 1 1 600px; }
pre { background: #f6f6f6; padding: 0.6em; }
img { max-width: 100%; }
"""


@dataclass
class ExplainPage:
    """What was written: the page, its PNGs and its JSON summary."""

    html: Path
    pngs: list[Path] = field(default_factory=list)
    summary: Path | None = None


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def summary(view: ClassView) -> dict[str, Any]:
    """The page's numbers for one view (JSON-serialisable)."""
    return {"case_id": view.case_id, "class": view.name, "label": view.class_id, "S": view.S, "U": view.U,
            "mask_dice": view.mask_fit()[0],
            "entropy": view.entropy, "normaliser": view.normaliser, "rows": view.rows, "columns": view.columns,
            "scores": view.scores, "source": view.source, "image": view.image_path, "label_map": view.label_path}


def _changes(clean: ClassView, planted: ClassView) -> dict[str, dict[str, float | None]]:
    """Score name -> clean, planted and change, for S, U and every scorer both views hold."""
    rows = {"S": (clean.S, planted.S), "U": (clean.U, planted.U), "mask fit (Dice)": (clean.mask_fit()[0], planted.mask_fit()[0])}
    # A stored case scored with fewer scorers than the planted copy's full set shows "—" where it has none.
    rows.update({name: (clean.scores.get(name), planted.scores.get(name)) for name in {**clean.scores, **planted.scores}})
    return {name: {"clean": a, "planted": b, "change": None if a is None or b is None else b - a} for name, (a, b) in rows.items()}


class _Writer:
    """Writes each figure as a PNG beside the page and returns its <img> tag (the same bytes, embedded)."""

    def __init__(self, out: Path, stem: str) -> None:
        self.out, self.stem, self.written = out, stem, []

    def image(self, figure: Figure, suffix: str, alt: str) -> str:
        payload = png_bytes(figure, PNG_DPI)
        path = self.out / f"{self.stem}_{suffix}.png"
        atomic_write_bytes(path, payload)
        self.written.append(path)
        return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(payload).decode('ascii')}'>"


def _facts(view: ClassView) -> str:
    fit, fit_source = view.mask_fit()
    facts = {"S (how the logit maps' energy spreads across slices)": _number(view.S),
             "mask fit: Dice of the model's mask and the label": f"{_number(fit, 2)} ({fit_source})",
             "case": view.case_id, "class": f"{view.name} (label {view.class_id})", "image": view.image_path,
             "label map": view.label_path, "slices holding the class (rows of z_c)": view.rows,
             "pixels per row (N = h·w of the logit map)": view.columns, "numbers": view.source}
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items()) + "</table>"


#: What a ``label_check`` value is, wherever one is shown without its cohort.
LABEL_CHECK_READING = "a sum of robust z-scores across the cohort (0: typical for this structure; 3 or more: unusual)"


def _scorer_reading(name: str) -> str:
    """What a scorer's value means, for the scores table (the registry's one-line summary)."""
    info = SCORER_INFO.get(name)
    meaning = info.summary if info is not None else ""
    if name == LABEL_CHECK:
        return f"{LABEL_CHECK_READING}: {meaning}; higher = more suspect"
    return f"{meaning}; higher = more suspect" if meaning else "higher = more suspect"


def _scores_table(view: ClassView) -> str:
    fit, fit_source = view.mask_fit()
    rows = [f"<tr><td>S</td><td class='number'>{_number(view.S)}</td><td>how the energy of the class's logit maps spreads "
            "across its slices (the paper: higher = easier)</td></tr>",
            f"<tr><td>U = 1 − S</td><td class='number'>{_number(view.U)}</td><td>the paper's aleatoric uncertainty</td></tr>",
            f"<tr><td>mask fit (Dice)</td><td class='number'>{_number(fit, 2)}</td><td>how well the model's mask (logit &gt; 0) "
            f"overlaps the label, from {html.escape(fit_source)}; 1 = the same region. Not what S measures</td></tr>"]
    rows += [f"<tr><td>{html.escape(name)}</td><td class='number'>{_number(value)}</td><td>{html.escape(_scorer_reading(name))}</td></tr>"
             for name, value in view.scores.items()]
    return "<table><tr><th>score</th><th>value</th><th>reading</th></tr>" + "".join(rows) + "</table>"


def _changes_table(changes: Mapping[str, Mapping[str, float | None]], title: str) -> str:
    rows = [f"<tr><td>{html.escape(name)}</td><td class='number'>{_number(v['clean'])}</td>"
            f"<td class='number'>{_number(v['planted'])}</td><td class='number'>{_number(v['change'], 4)}</td></tr>"
            for name, v in changes.items()]
    return (f"<table><tr><th>score</th><th>clean</th><th>{html.escape(title)}</th><th>change</th></tr>"
            + "".join(rows) + "</table>")


def write_explain_page(view: ClassView, out: str | Path, cohort: Mapping[str, np.ndarray] | None = None,
                       planted: tuple[ClassView, PlantedCopy] | None = None, cohort_source: str = "") -> ExplainPage:
    """Write ``<case>_<class>.html`` (self-contained), its PNGs and ``<case>_<class>.json`` into ``out``."""
    out = Path(out)
    stem = f"{safe_file_name(view.case_id)}_{safe_file_name(view.name)}"
    writer = _Writer(out, stem)
    views = [view] + ([planted[0]] if planted else [])
    limit, floor = logit_limit(views), spectrum_floor(views)
    title = f"How the model sees {view.name} in {view.case_id}"
    sections = [f"<h1>{html.escape(title)}</h1>", _facts(view), EXPLANATION]

    strip = writer.image(slice_strip(view, limit), "strip", f"slice strip of {view.name}")
    spectrum = writer.image(energy_spectrum(view, floor), "spectrum", f"energy spectrum of {view.name}")
    data: dict[str, Any] = {"view": summary(view)}
    if planted is None:
        sections += ["<h2>What the model answered, slice by slice</h2>", strip,
                     "<h2>The energy spectrum that S is the entropy of</h2>", spectrum,
                     f"<pre>{html.escape(spectrum_text(view))}</pre>", "<h2>Scores of this class</h2>", _scores_table(view)]
    else:
        copy_view, copy = planted
        name = copy.corruption.kind
        copy_strip = writer.image(slice_strip(copy_view, limit), f"{name}_strip", f"slice strip of the {copy.title} copy")
        copy_spectrum = writer.image(energy_spectrum(copy_view, floor), f"{name}_spectrum", f"energy spectrum of the {copy.title} copy")
        changes = _changes(view, copy_view)
        data.update({"planted": summary(copy_view), "corruption": copy.corruption.to_dict(), "changes": changes})
        where = f"{copy.spec.image}" + ("" if copy.spec.label is None else f" with {copy.spec.label}")
        sections += [f"<h2>Clean and planted ({html.escape(copy.title)}) side by side</h2>",
                     f"<p>Planted copy: {html.escape(where)} ({copy.corruption.changed_voxels} voxels changed). "
                     "Check it with <code>auv score</code> on those files.</p>",
                     _changes_table(changes, copy.title),
                     "<div class='side'>"
                     f"<div><h3>clean</h3>{spectrum}<pre>{html.escape(spectrum_text(view))}</pre></div>"
                     f"<div><h3>{html.escape(copy.title)}</h3>{copy_spectrum}<pre>{html.escape(spectrum_text(copy_view))}</pre></div>"
                     "</div>",
                     "<h3>clean</h3>", strip, f"<h3>{html.escape(copy.title)}</h3>", copy_strip]
    disagreement = disagreement_strip(view)
    if disagreement is not None:
        sections += ["<h2>Where the label and the model disagree</h2>", DISAGREEMENT_EXPLANATION,
                     f"<p>{html.escape(disagreement_text(view))}</p>",
                     writer.image(disagreement, "disagreement", f"disagreement map of {view.name}"),
                     f"<p>Accept the model's outline as the correction with <code>auv propose RESULTS {html.escape(view.case_id)} "
                     f"--structure '{html.escape(view.name)}' --accept</code>, or edit it in Slicer.</p>"]
    if cohort:
        marks = {"this case": {"S": view.S, **view.scores}}
        if planted is not None:
            marks[planted[1].title] = {"S": planted[0].S, **planted[0].scores}
        sections += [f"<h2>{html.escape(view.name)} in the reference cohort</h2>",
                     f"<p>{html.escape(cohort_source)}</p>",
                     writer.image(cohort_placement(cohort, marks, view.name), "cohort", "placement in the cohort")]
        data["cohort"] = {name: values.tolist() for name, values in cohort.items()}
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>" + "\n".join(sections) + "</body></html>\n")
    html_path = out / f"{stem}.html"
    atomic_write_bytes(html_path, page.encode("utf-8"))
    summary_path = out / f"{stem}.json"
    write_json_atomic(summary_path, _json_safe(data))
    return ExplainPage(html_path, writer.written, summary_path)


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null (the JSON writer refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
