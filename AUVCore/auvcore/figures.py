"""Matplotlib figures as images embedded in self-contained HTML pages (the report, the audit).

Example:
    >>> from matplotlib.figure import Figure
    >>> figure = Figure(figsize=(1, 1))
    >>> _ = figure.add_subplot().plot([0, 1])
    >>> png_data_uri(figure).startswith("data:image/png;base64,iVBORw0KGgo")
    True
"""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure

#: Resolution of the embedded images: sharp on screen, small in the page.
PNG_DPI = 100


def png_bytes(figure: Figure, dpi: int = PNG_DPI) -> bytes:
    """``figure`` as the bytes of a PNG file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_data_uri(figure: Figure, dpi: int = PNG_DPI) -> str:
    """``figure`` as a PNG ``data:`` URI, for an ``<img src=...>`` that needs no file beside the page."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(figure, dpi)).decode("ascii")
