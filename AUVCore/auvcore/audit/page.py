"""The audit's HTML page: structure-level detection first, then case level, the detector, and every figure.

Structures lead because a reviewer works through structures: per scorer, the
AUROC and the precision among the 20 most suspect structures, pooled over the
label kinds and then per kind; then the AUROC heat maps, the fitted
detector's held-out AUROC (``--fit``) and the full ``audit.csv``.
"""

from __future__ import annotations

import html
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..curation import tool_version
from ..files import atomic_write_bytes
from ..figures import png_data_uri
from .metrics import TOP_STRUCTURES, structure_counts, structure_summary
from .settings import AuditSettings

if TYPE_CHECKING:
    from .runner import AuditFigures


def auroc_heatmap(table: pd.DataFrame, title: str) -> Figure:
    """Rows: ``table``'s index (scorers); columns: kind groups; cells: AUROC on a diverging map centred on chance."""
    figure = Figure(figsize=(1.0 + 0.75 * table.shape[1], 0.8 + 0.28 * table.shape[0]))
    axes = figure.add_subplot()
    image = axes.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right")
    axes.set_yticks(range(table.shape[0]), [str(label) for label in table.index], fontsize=7)
    for (row, column), value in np.ndenumerate(table.to_numpy(dtype=float)):
        if np.isfinite(value):
            dark = abs(value - 0.5) > 0.3  # the ends of the map are dark: write on them in white
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="AUROC (0.5 = chance)")
    return figure


def case_auroc_table(figures: pd.DataFrame) -> pd.DataFrame:
    """Case-level AUROC: rows "scorer (aggregation)", columns the kind groups in the audit's order."""
    part = figures[figures["level"] == "case"]
    table = part.pivot_table(index=["scorer", "aggregate"], columns="kind", values="auroc", sort=False)
    table = table[[c for c in part["kind"].drop_duplicates() if c in table.columns]]
    table.index = [f"{s} ({a})" for s, a in table.index]
    return table


def _table_html(table: pd.DataFrame, index: bool = True) -> str:
    return table.to_html(index=index, float_format=lambda v: f"{v:.3f}", na_rep="n/a")


def _structure_section(result: "AuditFigures") -> list[str]:
    if result.structures.empty:
        return ["<h2>Structures</h2><p>No label corruption was planted, so no structure was audited.</p>"]
    counts = "".join(f"<li>{html.escape(line)}</li>" for line in structure_counts(result.structures))
    heat = result.structures.pivot_table(index="scorer", columns="kind", values="auroc", sort=False)
    heat = heat[list(result.structures["kind"].drop_duplicates())]
    title = "Corrupted structures against structures of clean cases"
    return [
        f"<h2>{title}</h2>",
        "<p>Each structure's robust z within its class across the cohort, per scorer (higher = more suspect). "
        f"AUROC over all structures, and P@{TOP_STRUCTURES}: the share of corrupted structures among the "
        f"{TOP_STRUCTURES} most suspect of a repeat's cohort (averaged over the repeats). <i>label</i> pools the "
        "label kinds; scorers are ordered by its AUROC, best first.</p>",
        f"<ul>{counts}</ul>",
        _table_html(structure_summary(result.structures)),
        f'<img alt="structure AUROC" src="{png_data_uri(auroc_heatmap(heat, title))}">',
    ]


def _detector_section(held_out: dict[str, float]) -> list[str]:
    if not held_out:
        return []
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{value:.3f}</td></tr>" for name, value in held_out.items())
    return ["<h2>Fitted detector, on held-out structures</h2>",
            "<p>AUROC of the detector (<code>detector.json</code>) fitted without the kind or the source case it is "
            "tested on: leave-one-kind-out per kind and their mean, and leave-one-case-out pooled over the cases; "
            "<code>unfitted_label_check</code>: the fixed sum on the same structures (the kinds' mean, and every "
            "structure), the figures the detector has to beat to be worth using.</p>",
            f"<table><tr><th>held out</th><th>AUROC</th></tr>{rows}</table>"]


def write_audit_page(path: Path, result: "AuditFigures", planted_count: int, cases: int, settings: AuditSettings) -> None:
    """A self-contained page (images embedded), written atomically."""
    figures = result.figures
    sections = [
        "<h1>AUV audit: which score finds which error</h1>",
        f"<p>{cases} cases; {planted_count} corrupted copies over {settings.repeats} repeat(s) "
        f"(fraction {settings.fraction}, seed {settings.seed}, kinds {', '.join(settings.kinds)}, "
        f"magnitudes {html.escape(str(asdict(settings)['magnitudes'] or 'default'))}). "
        "AUROC 0.5 is chance. Higher scores mean more suspect for every scorer.</p>",
        *_structure_section(result),
    ]
    if (figures["level"] == "case").any():
        title = "Corrupted against clean cases"
        sections.append(f"<h2>{title}</h2><p>Per scorer and aggregation over the case's structures; precision at the "
                        "top 10% and 20% of the cases is in the full table below.</p>"
                        f'<img alt="case AUROC" src="{png_data_uri(auroc_heatmap(case_auroc_table(figures), title))}">')
    sections.extend(_detector_section(result.held_out))
    sections.append("<h2>All figures (audit.csv)</h2>" + _table_html(figures, index=False))
    sections.append(f"<p><small>{datetime.now(UTC).isoformat(timespec='seconds')}, auvcore {tool_version()}</small></p>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>AUV audit</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>" + "\n".join(sections) + "</body></html>")
    atomic_write_bytes(path, page.encode("utf-8"))
