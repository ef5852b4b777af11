"""The audit's HTML page: a heat map of AUROC per scorer and kind, and the full table."""

from __future__ import annotations

import html
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..curation import tool_version
from ..files import atomic_write_bytes
from ..figures import png_data_uri
from .settings import AuditSettings


def auroc_heatmap(figures: pd.DataFrame, level: str, title: str) -> Figure:
    """Rows: scorer (aggregation); columns: kind groups; cells: AUROC on a diverging map centred on chance."""
    part = figures[figures["level"] == level]
    table = part.pivot_table(index=["scorer", "aggregate"], columns="kind", values="auroc", sort=False)
    table = table[[c for c in part["kind"].drop_duplicates() if c in table.columns]]
    labels = [f"{s} ({a})" for s, a in table.index]
    figure = Figure(figsize=(1.0 + 0.75 * table.shape[1], 0.8 + 0.28 * table.shape[0]))
    axes = figure.add_subplot()
    image = axes.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right")
    axes.set_yticks(range(table.shape[0]), labels, fontsize=7)
    for (row, column), value in np.ndenumerate(table.to_numpy(dtype=float)):
        if np.isfinite(value):
            dark = abs(value - 0.5) > 0.3  # the ends of the map are dark: write on them in white
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="AUROC (0.5 = chance)")
    return figure


def write_audit_page(path: Path, figures: pd.DataFrame, planted_count: int, cases: int, settings: AuditSettings) -> None:
    """A self-contained page (images embedded), written atomically."""
    sections = [
        "<h1>AUV audit: which score finds which error</h1>",
        f"<p>{cases} cases; {planted_count} corrupted copies over {settings.repeats} repeat(s) "
        f"(fraction {settings.fraction}, seed {settings.seed}, kinds {', '.join(settings.kinds)}, "
        f"magnitudes {html.escape(str(asdict(settings)['magnitudes'] or 'default'))}). "
        "AUROC 0.5 is chance; precision at the top 10% and 20% is the share of corrupted cases among the highest scores. "
        "Higher scores mean more suspect for every scorer.</p>",
    ]
    for level, title in (("case", "Corrupted against clean cases"), ("class", "Corrupted structures against structures of clean cases")):
        if (figures["level"] == level).any():
            sections.append(f'<h2>{title}</h2><img alt="{level} AUROC" src="{png_data_uri(auroc_heatmap(figures, level, title))}">')
    sections.append("<h2>All figures</h2>" + figures.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a"))
    sections.append(f"<p><small>{datetime.now(UTC).isoformat(timespec='seconds')}, auvcore {tool_version()}</small></p>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>AUV audit</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>" + "\n".join(sections) + "</body></html>")
    atomic_write_bytes(path, page.encode("utf-8"))
