"""The explain page's pictures, drawn with matplotlib's object API (no pyplot, so no global backend).

* :func:`slice_strip`: per slice of the class, the windowed image with the
  label outline and the box prompt, and below it the model's mask logits as a
  heat map with their zero contour (the border of the model's mask);
* :func:`energy_spectrum`: the normalised energy distribution p of z_c on a
  log scale, with S, its normaliser and U written out;
* :func:`cohort_placement`: where the class's S and scorer values sit among the
  same class's values over a reference cohort.

Example:
    >>> figure = energy_spectrum(view)  # doctest: +SKIP
    >>> figure.savefig("spectrum.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .view import ClassView

#: At most this many slices are drawn; longer classes are sampled evenly.
MAX_STRIP_SLICES = 30
STRIP_COLUMNS = 10
PANEL_INCHES = 1.55
LOGIT_CMAP = "RdBu_r"
LABEL_COLOUR = "#ffd23f"
BOX_COLOUR = "#2ec4b6"
MASK_COLOUR = "black"
#: The disagreement map: where the label has the structure and the model does not, and the reverse.
LABEL_ONLY_COLOUR = "#e4572e"
MODEL_ONLY_COLOUR = "#3a86ff"
PROPOSAL_COLOUR = "#2ec4b6"
#: At most this many slices of a disagreement map are drawn (those where the two disagree most).
DISAGREEMENT_SLICES = 8
#: Colours of this case and of a planted copy in the cohort plot.
MARK_COLOURS = ("#d62728", "#ff7f0e")
#: The fewest cohort values for a box in the cohort plot: below it, the points alone (a box of 3 is no distribution).
MIN_BOX_VALUES = 5


def strip_slices(view: ClassView) -> np.ndarray:
    """Positions (into ``view.slices``) of the slices the strip draws: all, or an even sample of MAX_STRIP_SLICES."""
    if view.rows <= MAX_STRIP_SLICES:
        return np.arange(view.rows)
    return np.unique(np.linspace(0, view.rows - 1, MAX_STRIP_SLICES).round().astype(int))


def crop_window(view: ClassView, margin: float = 0.25, minimum: int = 24) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) in slice pixels: the union of the class's boxes (its label's extent) widened by ``margin`` on
    each side, at least ``minimum`` pixels: the structure fills the panel, however small it is in the slice."""
    height, width = view.image.shape[1:]
    x0, y0 = np.nanmin(view.boxes[:, 0]), np.nanmin(view.boxes[:, 1])
    x1, y1 = np.nanmax(view.boxes[:, 2]), np.nanmax(view.boxes[:, 3])
    half_w = max((x1 - x0 + 1) * (1 + 2 * margin), minimum) / 2
    half_h = max((y1 - y0 + 1) * (1 + 2 * margin), minimum) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (max(cx - half_w, -0.5), min(cx + half_w, width - 0.5), max(cy - half_h, -0.5), min(cy + half_h, height - 0.5))


def logit_limit(views: Sequence[ClassView]) -> float:
    """A symmetric colour limit for the logits of ``views`` (their 99th percentile of |logit|)."""
    values = np.concatenate([np.abs(v.logits).ravel() for v in views if v.logits is not None] or [np.zeros(0)])
    values = values[np.isfinite(values)]  # NaN outside the cached crop
    return max(float(np.percentile(values, 99)), 1.0) if values.size else 1.0


def _draw_image(axes, view: ClassView, position: int, window: tuple[float, float, float, float]) -> None:
    """The windowed slice, the label outline and the box prompt."""
    d = int(view.slices[position])
    # bilinear: a small crop is enlarged many times, and nearest neighbour would draw its voxels as blocks
    axes.imshow(view.image[d], cmap="gray", vmin=0.0, vmax=1.0, aspect=view.spacing[1] / view.spacing[2], interpolation="bilinear")
    bx0, by0, bx1, by1 = view.boxes[position]
    axes.add_patch(Rectangle((bx0 - 0.5, by0 - 0.5), bx1 - bx0 + 1, by1 - by0 + 1, fill=False, edgecolor=BOX_COLOUR, linewidth=1.0))
    _finish_slice(axes, view, d, window, fill=True)


def _draw_logits(axes, view: ClassView, position: int, limit: float, window: tuple[float, float, float, float]):
    """The mask logits over the slice's extent with their zero contour (the model's mask border); returns the image."""
    d = int(view.slices[position])
    height, width = view.image.shape[1:]
    axes.set_facecolor("#dddddd")  # logits outside the cached crop are NaN
    heat = None
    if view.logits is not None:
        logits = view.logits[position]
        heat = axes.imshow(logits, cmap=LOGIT_CMAP, vmin=-limit, vmax=limit, aspect=view.spacing[1] / view.spacing[2],
                           extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
        if np.nanmin(logits) < 0 < np.nanmax(logits):
            # Pixel centres of the (h, w) grid in the slice's own pixel coordinates.
            ys = (np.arange(logits.shape[0]) + 0.5) * height / logits.shape[0] - 0.5
            xs = (np.arange(logits.shape[1]) + 0.5) * width / logits.shape[1] - 0.5
            axes.contour(xs, ys, logits, levels=[0.0], colors=MASK_COLOUR, linewidths=0.9)
    _finish_slice(axes, view, d, window)
    return heat


def _finish_slice(axes, view: ClassView, d: int, window: tuple[float, float, float, float], fill: bool = False) -> None:
    """The label's outline (and, on the image, a light fill, so that a thin structure shows), then the window."""
    if view.mask[d].any() and not view.mask[d].all():
        if fill:
            overlay = np.zeros((*view.mask[d].shape, 4))
            overlay[view.mask[d]] = (*to_rgb(LABEL_COLOUR), 0.25)
            axes.imshow(overlay, aspect=view.spacing[1] / view.spacing[2], interpolation="nearest")
        axes.contour(view.mask[d].astype(np.float32), levels=[0.5], colors=LABEL_COLOUR, linewidths=0.8)
    x0, x1, y0, y1 = window
    axes.set_xlim(x0, x1)
    axes.set_ylim(y1, y0)
    axes.set_xticks([])
    axes.set_yticks([])


def _logit_bar(figure: Figure, heat, axes, fraction: float = 0.02) -> None:
    bar = figure.colorbar(heat, ax=axes, fraction=fraction, pad=0.01)
    bar.set_label("mask logit (> 0: the model's mask)", fontsize=7)
    bar.ax.tick_params(labelsize=7)


def slice_strip(view: ClassView, limit: float | None = None) -> Figure:
    """Two rows per slice: image, label outline and box prompt; then the logits with their zero contour."""
    chosen = strip_slices(view)
    columns = min(STRIP_COLUMNS, len(chosen))
    blocks = math.ceil(len(chosen) / columns)
    limit = limit or logit_limit([view])
    window = crop_window(view)
    x0, x1, y0, y1 = window
    panel_height = PANEL_INCHES * min(view.spacing[1] / view.spacing[2] * (y1 - y0) / (x1 - x0), 1.6)
    figure = Figure(figsize=(columns * PANEL_INCHES + 0.9, blocks * 2 * panel_height + 0.6))
    grid = figure.add_gridspec(2 * blocks, columns, hspace=0.12, wspace=0.04, top=0.93, bottom=0.01, left=0.01, right=0.92)
    heat = None
    for number, position in enumerate(chosen):
        block, column = divmod(number, columns)
        top = figure.add_subplot(grid[2 * block, column])
        bottom = figure.add_subplot(grid[2 * block + 1, column])
        _draw_image(top, view, position, window)
        heat = _draw_logits(bottom, view, position, limit, window) or heat
        top.set_title(f"slice {int(view.slices[position])}", fontsize=7, pad=2)
    if heat is not None:
        _logit_bar(figure, heat, figure.axes)
    sampled = "" if len(chosen) == view.rows else f", {len(chosen)} of them shown"
    figure.suptitle(f"{view.name} in {view.case_id}: {view.rows} slices{sampled}, each cropped to the label's extent. "
                    "Top: image, label (yellow), box prompt (teal). Bottom: mask logits, the model's mask border (black), "
                    "label (yellow)", fontsize=8, y=0.995)
    return figure


def class_panel(view: ClassView, slice_index: int | None = None) -> Figure:
    """One row for a structure: a slice (``slice_index`` of the volume where the class is on it, else its middle one)
    with label and box, the logits there, and its energy spectrum."""
    on = np.flatnonzero(view.slices == slice_index) if slice_index is not None else np.zeros(0, dtype=np.int64)
    position = int(on[0]) if on.size else view.rows // 2
    window = crop_window(view)
    figure = Figure(figsize=(10.4, 2.7))
    grid = figure.add_gridspec(1, 3, width_ratios=(1, 1, 1.9), wspace=0.55)
    image_axes, logit_axes, spectrum_axes = (figure.add_subplot(grid[0, i]) for i in range(3))
    _draw_image(image_axes, view, position, window)
    heat = _draw_logits(logit_axes, view, position, logit_limit([view]), window)
    if heat is not None:
        _logit_bar(figure, heat, logit_axes, fraction=0.08)
    image_axes.set_title(f"volume slice {int(view.slices[position])}: {position + 1} of the {view.rows} slices of {view.name}",
                         fontsize=8)
    logit_axes.set_title("mask logits\n(black: mask border)", fontsize=8)
    _draw_spectrum(spectrum_axes, view)
    spectrum_axes.set_title(f"{view.name}: S = {view.S:.4f}, U = {view.U:.4f}" if view.S is not None else view.name, fontsize=9)
    return figure


def spectrum_text(view: ClassView) -> str:
    """The numbers of S written out, as the spectrum plot and the page show them."""
    s = "undefined" if view.S is None else f"{view.S:.4f}"
    u = "undefined" if view.U is None else f"{view.U:.4f}"
    return (f"entropy H = −Σ p log p = {view.entropy:.4f}\n"
            f"normaliser log min(n_c, N) = log min({view.rows}, {view.columns}) = {view.normaliser:.4f}\n"
            f"  (n_c slices; N = h·w pixels of one logit map)\n"
            f"S = H / log min(n_c, N) = {s}\nU = 1 − S = {u}")


def _draw_spectrum(axes, view: ClassView, floor: float | None = None) -> None:
    p = np.asarray(view.energy, dtype=np.float64)
    positive = p > 0
    ranks = np.arange(1, p.size + 1)
    axes.bar(ranks[positive], p[positive], color="#4c72b0", width=0.8, label="p_j = σ_j² / Σ σ²")
    axes.axhline(1.0 / max(view.rows, 1), color="#55a868", linestyle="--", linewidth=1.2,
                 label=f"equal energy 1/n_c = 1/{view.rows} (S = 1)")
    axes.set_yscale("log")
    if floor is not None:
        axes.set_ylim(bottom=floor)
    axes.set_xlim(0.3, p.size + 0.7)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("singular direction j of z_c (largest energy first)", fontsize=8)
    axes.set_ylabel("share of the energy p_j", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, loc="upper right")


def energy_spectrum(view: ClassView, floor: float | None = None) -> Figure:
    """Bars of p_j, largest first, on a log scale, with the uniform 1/n_c (S = 1) as a dashed line and S written out."""
    figure = Figure(figsize=(6.4, 3.6))
    axes = figure.add_subplot()
    _draw_spectrum(axes, view, floor)
    axes.set_title(f"Energy spectrum of z_c: {view.name} in {view.case_id}", fontsize=10)
    axes.text(0.98, 0.62, spectrum_text(view), transform=axes.transAxes, ha="right", va="top", fontsize=7.5,
              family="monospace", bbox={"facecolor": "white", "edgecolor": "#ccc", "alpha": 0.9})
    return figure


def class_spectra(spectra: Mapping[str, tuple[float, np.ndarray]]) -> Figure:
    """Every class's energy distribution as a line on a log scale, coloured by its S (dark = low S = hard)."""
    figure = Figure(figsize=(7.2, 3.8))
    axes = figure.add_subplot()
    norm = Normalize(0.0, max([s for s, _ in spectra.values()] + [1e-3]))
    cmap = colormaps["viridis"]
    for name, (s, p) in sorted(spectra.items(), key=lambda item: -item[1][0]):  # the hardest drawn last, on top
        positive = p[p > 0]
        axes.plot(np.arange(1, positive.size + 1), positive, "-", color=cmap(norm(s)), linewidth=1.2, alpha=0.85)
    axes.set_yscale("log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("singular direction j of z_c (largest energy first)")
    axes.set_ylabel("share of the energy p_j")
    axes.set_title(f"Energy spectra of the case's classes ({len(spectra)})", fontsize=10)
    bar = figure.colorbar(ScalarMappable(norm, cmap), ax=axes, fraction=0.04, pad=0.02)
    bar.set_label("S of the class (low = hard)", fontsize=8)
    return figure


def spectrum_floor(views: Sequence[ClassView]) -> float:
    """A shared lower y limit, so a clean and a planted spectrum are drawn on the same scale."""
    smallest = [float(v.energy[v.energy > 0].min()) for v in views if (v.energy > 0).any()]
    return 10 ** math.floor(math.log10(min(smallest))) if smallest else 1e-6


def _readable_range(groups: Sequence[Sequence[float | None]], least: float = 0.25) -> tuple[float, float]:
    """An axis range over the finite values, at least ``least`` of their largest magnitude wide: 3 values that agree
    to the third decimal do not fill the axis as if they differed.

    Example:
        >>> [round(v, 4) for v in _readable_range([[0.050, 0.051], [None]])]
        [0.0435, 0.0575]
    """
    finite = np.array([float(v) for group in groups for v in group if v is not None and math.isfinite(float(v))])
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    span = max(high - low, least * max(abs(low), abs(high)), 1e-9)
    middle, half = (low + high) / 2, span / 2 * 1.1
    return middle - half, middle + half


def cohort_placement(cohort: Mapping[str, np.ndarray], marks: Mapping[str, Mapping[str, float | None]], class_name: str) -> Figure:
    """One row per score: the cohort's values of the class (box and points) and each mark's value on it.

    ``cohort``: score name -> the class's values over the reference cohort;
    ``marks``: label (e.g. "this case", "blur copy") -> score name -> value.
    """
    names = list(cohort)
    figure = Figure(figsize=(7.2, 0.9 + 0.62 * len(names)))
    rng = np.random.default_rng(0)  # fixed jitter: the same page for the same inputs
    for row, name in enumerate(names):
        axes = figure.add_subplot(len(names), 1, row + 1)
        values = np.asarray(cohort[name], dtype=np.float64)
        if values.size >= MIN_BOX_VALUES:
            axes.boxplot(values, orientation="horizontal", widths=0.5, showfliers=False, medianprops={"color": "#555"})
        axes.plot(values, 1 + rng.uniform(-0.15, 0.15, values.size), "o" if values.size < MIN_BOX_VALUES else ".",
                  color="#4c72b0", alpha=0.7, markersize=7 if values.size < MIN_BOX_VALUES else 5)
        axes.set_ylim(0.5, 1.5)
        for (label, scores), colour in zip(marks.items(), MARK_COLOURS):
            value = scores.get(name)
            if value is not None and math.isfinite(value):
                rank = int((values < value).sum())
                axes.plot([value], [1], "D", color=colour, markersize=8, markeredgecolor="white",
                          label=f"{label}: {value:.4g} (above {rank} of {values.size})")
        axes.set_xlim(*_readable_range([values, *[[m.get(name)] for m in marks.values()]]))
        direction = "higher = easier" if name == "S" else "higher = more suspect"
        axes.set_yticks([1], [f"{name}, n = {values.size}\n({direction})"], fontsize=7)
        axes.tick_params(axis="x", labelsize=7)
        axes.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    few = min((np.asarray(v).size for v in cohort.values()), default=0) < MIN_BOX_VALUES
    figure.suptitle(f"{class_name}: this case among the reference cohort's cases"
                    + (f" (points; a box from {MIN_BOX_VALUES} cases on)" if few else ""), fontsize=9)
    figure.subplots_adjust(hspace=0.9)
    return figure


def disagreement_strip(view: ClassView, count: int = DISAGREEMENT_SLICES) -> Figure | None:
    """Where the label and the model disagree: the slices of the probe's crop where they disagree most, the label's
    outline (yellow), the proposal's (teal), label-only voxels in red and model-only voxels in blue.
    None when the view has no proposal (the case was scored without the probe)."""
    from matplotlib.colors import ListedColormap

    stored = view.proposal
    if stored is None:
        return None
    counts = np.count_nonzero(stored.disagreement, axis=(1, 2))
    chosen = np.sort(np.argsort(-counts, kind="stable")[: min(count, len(counts))])
    figure = Figure(figsize=(len(chosen) * PANEL_INCHES + 0.3, PANEL_INCHES * 1.25 + 0.5))
    grid = figure.add_gridspec(1, len(chosen), wspace=0.04, top=0.8, bottom=0.02, left=0.01, right=0.99)
    first, row0, column0 = stored.corner
    rows, columns = stored.proposal.shape[1:]
    overlay = ListedColormap([MODEL_ONLY_COLOUR, (0, 0, 0, 0), LABEL_ONLY_COLOUR])
    for number, position in enumerate(chosen):
        axes = figure.add_subplot(grid[0, number])
        d = first + int(position)
        axes.imshow(view.image[d, row0 : row0 + rows, column0 : column0 + columns], cmap="gray", vmin=0.0, vmax=1.0,
                    aspect=view.spacing[1] / view.spacing[2], interpolation="nearest")
        difference = stored.disagreement[position].astype(np.float32)
        axes.imshow(np.ma.masked_equal(difference, 0), cmap=overlay, vmin=-1, vmax=1, alpha=0.55,
                    aspect=view.spacing[1] / view.spacing[2], interpolation="nearest")
        label = stored.proposal[position] ^ (stored.disagreement[position] != 0)
        for mask, colour in ((label, LABEL_COLOUR), (stored.proposal[position], PROPOSAL_COLOUR)):
            if mask.any() and not mask.all():
                axes.contour(mask.astype(np.float32), levels=[0.5], colors=colour, linewidths=0.9)
        axes.set_title(f"slice {d}: {int(counts[position])} vox", fontsize=7, pad=2)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(f"{view.name} in {view.case_id}: label (yellow), the model's outline under prompts that do not\n"
                    "follow the label (teal: the proposal); red: only the label has it, blue: only the model", fontsize=8)
    return figure


def disagreement_text(view: ClassView) -> str:
    """One sentence on what the disagreement map says, signed: the label too big or too small, shifted, slices it
    misses, voxels the model does not support ("" without a proposal)."""
    from ..scorers.evidence import compare_masks  # numpy and scipy only

    stored = view.proposal
    if stored is None:
        return ""
    label = stored.proposal ^ (stored.disagreement != 0)
    held = np.flatnonzero(label.any(axis=(1, 2)))
    if held.size == 0:
        return ""
    values = compare_masks(label, stored.proposal, (view.spacing[1], view.spacing[2]), (int(held[0]), int(held[-1]) + 1)).values
    added, removed = int(np.count_nonzero(stored.disagreement < 0)), int(np.count_nonzero(stored.disagreement > 0))
    size = values["size_offset"]
    parts = [f"the label has {removed} voxels the model's outline does not, and lacks {added} it has"]
    if math.isfinite(size):
        parts.append(f"its boundary lies {abs(size):.1f} mm {'outside' if size > 0 else 'inside'} the model's on average "
                     f"(the label is {'larger' if size > 0 else 'smaller'})")
    if math.isfinite(values["shift"]):
        parts.append(f"its centre is {values['shift']:.1f} mm from the model's")
    if values["missed_slices"] > 0:
        parts.append(f"beyond its ends the model finds {values['missed_slices']:.0%} of the end slice's area")
    return "; ".join(parts) + "."
