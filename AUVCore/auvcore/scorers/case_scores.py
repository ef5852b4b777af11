"""Per-case scorers computed from one foundation-model pass (no second encoder run).

Every scorer gives each class of a case an *uncertainty*: higher means more
suspect. Where it can, it also gives one value per slice, so a reviewer can be
pointed at a structure's worst slices. The definitions (docs/science/scorers.md):

* ``agreement``: 1 - Dice between the foundation model's box-prompted mask
  (mask logits > 0) and the label, pooled over the class's slices.
* ``fisher``: 1 / (1 + J), J the Fisher discriminant ratio
  (m_in - m_out)^2 / (v_in + v_out) of the mask logits inside and outside the
  label: how well the model's own output separates the labelled region.
* ``variance``: the data variance of Z[c], the mean over pixels of the
  variance of the mask logits across the class's slices (no per-slice value).
* ``boundary_gradient``: minus the mean in-plane image-gradient magnitude
  (intensity units per mm) on the label's boundary; a boundary that does not
  sit on an image edge scores high. A label-aware baseline without a model.
* ``boundary_logits``: how much the model's mask disagrees with the label at
  its boundary: the mean of 1 - p on a band just inside the label (the label
  minus its erosion by :data:`BOUNDARY_BAND` logit-grid pixels) and the mean
  of p on the ring just outside it (its dilation minus the label), averaged;
  p = sigmoid(mask logits). 0 for a mask that is sure and right, 1 for one
  sure and wrong; a dilated label puts background in the band, an eroded one
  organ in the ring, a shifted one both. The class value pools the pixels of
  all its slices.
* ``boundary_distance``: the mean distance in mm between the label's boundary
  and the boundary of the model's mask (logits > 0) on the same slice,
  symmetric (the mean of the two directions' mean distances), in the logit
  grid's physical pixel size. A slice where the model's mask is empty counts
  the label's equivalent diameter (2 sqrt(area / pi)): a structure the model
  does not see is as far off as its own size. The class value weights slices
  by the length of their label boundary.
* ``contrast``: cosine similarity of the mean embedding in a band just inside
  the label and a ring just outside it; a boundary the model's features do not
  see scores high.
* ``homogeneity``: 1 - mean cosine similarity of the embeddings inside the
  label to their mean.
* ``consistency``: over the class's slice range, the largest change of the
  inside-label embedding prototype from a slice to its neighbours
  (1 - cosine); a slice inside the range without the label counts 1.
* ``image_auv``: 1 - S of the image embeddings of the encoded slices (the
  label-free measure of SPEC §3 on the slices the labels touch), one value
  per case under the class name ``image``.
* ``stray_voxels``: the share of the label's voxels outside its largest
  connected component (face-connected in 3D): a second blob of the class.
* ``edge_offset``: where the image's own edge lies against the label's
  boundary, signed, in mm (+ = inside the label: the label reaches past the
  edge, too big; - = too small): the intensity profile over the rings of
  pixels from :data:`EDGE_RINGS` inside to as many outside the boundary,
  pooled over the class's slices, crosses halfway between its inner and
  outer levels that far from the boundary. Two-sided: a label may miss the
  edge either way, so its z is taken as |z| about the class's median.
* ``probe_agreement``, ``size_offset``, ``shift``, ``missed_slices``: the
  probe's label-independent evidence (:mod:`.evidence`).

The per-class inside-label prototypes (occupancy-weighted mean embeddings) are
returned too: the cohort scorers ``prototype`` and ``mahalanobis``
(:mod:`auvcore.scorers.cohort_scores`) compare them across cases.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from scipy import ndimage
from scipy.special import expit

from ..backends.base import CaseFeatures
from ..spectrum import class_spectra
from .edges import EDGE_RINGS, bounding_window, disk, offset_of, ring_sums
from .evidence import EVIDENCE_SCORERS, StructureEvidence
from .grid import labels_on_grid, occupancy_on_grid

#: An embedding cell belongs to a class when the class covers at least half of it.
INSIDE_OCCUPANCY = 0.5
#: A cell of the ring outside a label is covered by the class at most this much.
OUTSIDE_OCCUPANCY = 0.25
NO_EMBEDDINGS = "the backend gives no slice embeddings"
NO_GRID = "the backend's features are not maps of the slice"
#: Width in logit-grid pixels of the band inside and the ring outside a label that ``boundary_logits`` reads.
BOUNDARY_BAND = 2


@dataclass
class ScorerOutput:
    """One scorer's values for one case.

    Attributes:
        per_class: (C,) float64, NaN where undefined.
        per_slice: (C, D) float64 with NaN where there is no value, or None
            for scorers without per-slice values.
        reason: why every value is missing (e.g. the backend lacks embeddings).
    """

    per_class: np.ndarray
    per_slice: np.ndarray | None = None
    reason: str | None = None


@dataclass
class CaseInputs:
    """What the case scorers read: the prepared volume, its labels and one backend pass.

    Attributes:
        volume: float32 (D, H, W) in [0, 1] (after :func:`auvcore.imaging.normalise_intensity`).
        labels: integer (D, H, W) label map aligned with ``volume``.
        class_ids: the C label values, in the order of ``features.z``.
        spacing: voxel size (slice, row, column) in mm.
        features: the backend's classwise features.
        evidence: per class, the probe's label-independent evidence (:mod:`auvcore.scorers.evidence`), or None
            where the probe did not run; ``evidence_reason`` says why, where it could not.
    """

    volume: np.ndarray
    labels: np.ndarray
    class_ids: Sequence[int]
    spacing: tuple[float, float, float]
    features: CaseFeatures
    evidence: list[StructureEvidence | None] | None = None
    evidence_reason: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @functools.cached_property
    def present(self) -> np.ndarray:
        return self.features.present.cpu().numpy()

    @functools.cached_property
    def touched(self) -> list[int]:
        return [int(d) for d in np.flatnonzero(self.present.any(axis=0))]

    def logit_labels(self, d: int) -> np.ndarray:
        """The label slice on the logits' grid."""
        key = ("logit", d)
        if key not in self._cache:
            assert self.features.grid is not None
            self._cache[key] = labels_on_grid(self.labels[d], self.features.grid)
        return self._cache[key]

    def occupancy(self, d: int) -> np.ndarray:
        """(C, h, w): each class's cover of the embedding cells of slice ``d``."""
        key = ("occupancy", d)
        if key not in self._cache:
            assert self.features.embeddings is not None
            grid = tuple(self.features.embeddings[d].shape[1:])
            self._cache[key] = occupancy_on_grid(self.labels[d], self.class_ids, grid)
        return self._cache[key]

    @functools.cached_property
    def grid_spacing(self) -> tuple[float, float]:
        """(row, column) size in mm of a pixel of the logits' grid, which covers the whole slice."""
        assert self.features.grid is not None
        _, height, width = self.labels.shape
        _, row_mm, column_mm = self.spacing
        return row_mm * height / self.features.grid[0], column_mm * width / self.features.grid[1]

    def logit_row(self, c: int, d: int) -> np.ndarray:
        """The (h, w) float32 mask logits of class index ``c`` on slice ``d``: a view on the CPU, one row's copy from a GPU
        (a torch cast per row is slow)."""
        assert self.features.grid is not None
        return self.features.z[c, d].detach().cpu().numpy().reshape(self.features.grid)

    def class_slices(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """(class index, slice, its label on the logit grid, its mask logits (h, w) float32) where the class is on the grid."""
        assert self.features.grid is not None
        for d in self.touched:
            labels = self.logit_labels(d)
            for c in np.flatnonzero(self.present[:, d]):
                truth = labels == self.class_ids[c]
                if truth.any():
                    yield int(c), d, truth, self.logit_row(int(c), d)

    def embedding(self, d: int) -> np.ndarray:
        """(K, h, w) float64 embedding of slice ``d``."""
        assert self.features.embeddings is not None
        return self.features.embeddings[d].detach().cpu().numpy().astype(np.float64)

    def nan_output(self, with_slices: bool, reason: str | None = None) -> ScorerOutput:
        shape = (len(self.class_ids),)
        per_slice = np.full((len(self.class_ids), self.labels.shape[0]), np.nan) if with_slices else None
        return ScorerOutput(np.full(shape, np.nan), per_slice, reason)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else np.nan


def agreement(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.grid is None:
        return inputs.nan_output(True, NO_GRID)
    out = inputs.nan_output(True)
    sums = np.zeros((len(inputs.class_ids), 2))
    for d in inputs.touched:
        labels = inputs.logit_labels(d)
        for c in np.flatnonzero(inputs.present[:, d]):
            predicted = inputs.logit_row(int(c), d) > 0
            truth = labels == inputs.class_ids[c]
            overlap, total = float(np.sum(predicted & truth)), float(predicted.sum() + truth.sum())
            if total:
                out.per_slice[c, d] = 1.0 - 2.0 * overlap / total
                sums[c] += (overlap, total)
    defined = sums[:, 1] > 0
    out.per_class[defined] = 1.0 - 2.0 * sums[defined, 0] / sums[defined, 1]
    return out


def fisher(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.grid is None:
        return inputs.nan_output(True, NO_GRID)
    out = inputs.nan_output(True)
    # Per class: count, sum, sum of squares of the logits inside and outside the label.
    moments = np.zeros((len(inputs.class_ids), 2, 3))
    for d in inputs.touched:
        labels = inputs.logit_labels(d)
        for c in np.flatnonzero(inputs.present[:, d]):
            logits = inputs.logit_row(int(c), d).astype(np.float64)
            truth = labels == inputs.class_ids[c]
            slice_moments = np.array([[v.size, v.sum(), np.square(v).sum()] for v in (logits[truth], logits[~truth])])
            out.per_slice[c, d] = _fisher_uncertainty(slice_moments)
            moments[c] += slice_moments
    out.per_class[:] = [_fisher_uncertainty(m) for m in moments]
    return out


def _fisher_uncertainty(moments: np.ndarray) -> float:
    counts = moments[:, 0]
    if np.any(counts < 2):
        return np.nan
    means = moments[:, 1] / counts
    variances = moments[:, 2] / counts - means**2
    ratio = (means[0] - means[1]) ** 2 / max(float(variances.sum()), 1e-12)
    return 1.0 / (1.0 + ratio)


def variance(inputs: CaseInputs) -> ScorerOutput:
    out = inputs.nan_output(False)
    for c in range(len(inputs.class_ids)):
        rows = inputs.features.z[c][torch.from_numpy(inputs.present[c]).to(inputs.features.z.device)]
        if rows.shape[0] >= 2:
            out.per_class[c] = float(rows.double().var(dim=0, unbiased=False).mean())
    return out


def boundary_gradient(inputs: CaseInputs) -> ScorerOutput:
    out = inputs.nan_output(True)
    sums = np.zeros((len(inputs.class_ids), 2))
    _, row_mm, column_mm = inputs.spacing
    for d in np.flatnonzero((inputs.labels > 0).any(axis=(1, 2))):
        plane = inputs.volume[d].astype(np.float64)
        magnitude = np.hypot(ndimage.sobel(plane, axis=0) / (8 * row_mm), ndimage.sobel(plane, axis=1) / (8 * column_mm))
        for c, class_id in enumerate(inputs.class_ids):
            mask = inputs.labels[d] == class_id
            if not mask.any():
                continue
            edge = mask & ~ndimage.binary_erosion(mask)
            out.per_slice[c, d] = -float(magnitude[edge].mean())
            sums[c] += (magnitude[edge].sum(), edge.sum())
    defined = sums[:, 1] > 0
    out.per_class[defined] = -sums[defined, 0] / sums[defined, 1]
    return out


def _edge(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` with a 4-neighbour outside it (the array's border counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask)


def boundary_logits(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.grid is None:
        return inputs.nan_output(True, NO_GRID)
    out = inputs.nan_output(True)
    # Per class: the sums of 1 - p over the inner band and its pixels, of p over the outer ring and its pixels.
    sums = np.zeros((len(inputs.class_ids), 4))
    band_element = disk(BOUNDARY_BAND)
    for c, d, truth, logits in inputs.class_slices():
        window = bounding_window(truth, BOUNDARY_BAND)  # morphology on the label's neighbourhood only
        truth, probability = truth[window], expit(logits[window])
        band = truth & ~ndimage.binary_erosion(truth, band_element)
        ring = ndimage.binary_dilation(truth, band_element) & ~truth
        slice_sums = np.array([np.sum(1.0 - probability[band], dtype=np.float64), band.sum(), np.sum(probability[ring], dtype=np.float64), ring.sum()])
        out.per_slice[c, d] = _band_disagreement(slice_sums)
        sums[c] += slice_sums
    out.per_class[:] = [_band_disagreement(row) for row in sums]
    return out


def _band_disagreement(sums: np.ndarray) -> float:
    if sums[1] == 0 or sums[3] == 0:
        return np.nan
    return float((sums[0] / sums[1] + sums[2] / sums[3]) / 2)


def boundary_distance(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.grid is None:
        return inputs.nan_output(True, NO_GRID)
    out = inputs.nan_output(True)
    sums = np.zeros((len(inputs.class_ids), 2))  # per class: boundary-length-weighted distances, boundary length
    pixel_mm = inputs.grid_spacing
    for c, d, truth, logits in inputs.class_slices():
        predicted = logits > 0
        # Both masks' edges lie in their joint bounding box: find them there only.
        window = bounding_window(truth | predicted, 0)
        label_edge = _edge(truth[window])
        if predicted.any():
            value = _symmetric_edge_distance(label_edge, _edge(predicted[window]), pixel_mm)
        else:
            value = 2.0 * np.sqrt(truth.sum() * pixel_mm[0] * pixel_mm[1] / np.pi)
        out.per_slice[c, d] = value
        sums[c] += (value * label_edge.sum(), label_edge.sum())
    defined = sums[:, 1] > 0
    out.per_class[defined] = sums[defined, 0] / sums[defined, 1]
    return out


def _symmetric_edge_distance(first: np.ndarray, second: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """The mean of the mean distances (mm) from each edge's pixels to the other edge.

    Computed on the two edges' joint bounding box: every pixel of both lies
    in it, so the distances are exact.

    Example:
        >>> a = np.zeros((8, 8), bool); a[2, 2:6] = True
        >>> _symmetric_edge_distance(a, np.roll(a, 3, axis=0), (0.5, 1.0))
        1.5
    """
    window = bounding_window(first | second, 0)
    first, second = first[window], second[window]
    to_second = ndimage.distance_transform_edt(~second, sampling=pixel_mm)[first].mean()
    to_first = ndimage.distance_transform_edt(~first, sampling=pixel_mm)[second].mean()
    return float((to_second + to_first) / 2)


def _inside(occupancy: np.ndarray) -> np.ndarray:
    return occupancy >= INSIDE_OCCUPANCY


def contrast(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.embeddings is None:
        return inputs.nan_output(True, NO_EMBEDDINGS)
    out = inputs.nan_output(True)
    channels = next(iter(inputs.features.embeddings.values())).shape[0]
    band_sums = np.zeros((len(inputs.class_ids), 2, channels))
    for d in inputs.touched:
        embedding = inputs.embedding(d)
        occupancy = inputs.occupancy(d)
        for c in np.flatnonzero(inputs.present[:, d]):
            inside = _inside(occupancy[c])
            band = inside & ~ndimage.binary_erosion(inside)
            ring = ndimage.binary_dilation(inside) & ~inside & (occupancy[c] <= OUTSIDE_OCCUPANCY)
            if band.any() and ring.any():
                inner, outer = embedding[:, band].sum(axis=1), embedding[:, ring].sum(axis=1)
                out.per_slice[c, d] = _cosine(inner, outer)
                band_sums[c] += (inner / band.sum(), outer / ring.sum())
    for c in range(len(inputs.class_ids)):
        if band_sums[c].any():
            out.per_class[c] = _cosine(band_sums[c, 0], band_sums[c, 1])
    return out


def homogeneity(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.embeddings is None:
        return inputs.nan_output(True, NO_EMBEDDINGS)
    out = inputs.nan_output(True)
    cells: list[list[np.ndarray]] = [[] for _ in inputs.class_ids]
    for d in inputs.touched:
        embedding = inputs.embedding(d)
        occupancy = inputs.occupancy(d)
        for c in np.flatnonzero(inputs.present[:, d]):
            inside = embedding[:, _inside(occupancy[c])].T
            if len(inside):
                out.per_slice[c, d] = _dispersion(inside)
                cells[c].append(inside)
    for c, parts in enumerate(cells):
        if parts:
            out.per_class[c] = _dispersion(np.concatenate(parts))
    return out


def _dispersion(vectors: np.ndarray) -> float:
    """1 - the mean cosine similarity of (n, K) vectors to their mean."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    return float(1.0 - np.mean(unit @ centre))


def _slice_prototypes(inputs: CaseInputs) -> dict[tuple[int, int], tuple[np.ndarray, float]]:
    """(class index, slice) -> (occupancy-weighted embedding sum, occupancy sum)."""
    key = ("prototypes",)
    if key not in inputs._cache:
        prototypes = {}
        for d in inputs.touched:
            embedding = inputs.embedding(d)
            occupancy = inputs.occupancy(d)
            for c in np.flatnonzero(inputs.present[:, d]):
                weight = float(occupancy[c].sum())
                if weight > 0:
                    prototypes[(int(c), d)] = (np.tensordot(embedding, occupancy[c], axes=([1, 2], [0, 1])), weight)
        inputs._cache[key] = prototypes
    return inputs._cache[key]


def consistency(inputs: CaseInputs) -> ScorerOutput:
    if inputs.features.embeddings is None:
        return inputs.nan_output(True, NO_EMBEDDINGS)
    out = inputs.nan_output(True)
    prototypes = _slice_prototypes(inputs)
    for c, class_id in enumerate(inputs.class_ids):
        labelled = np.flatnonzero((inputs.labels == class_id).any(axis=(1, 2)))
        if len(labelled) < 2:
            continue
        for d in range(labelled[0], labelled[-1] + 1):
            if (c, d) not in prototypes:
                out.per_slice[c, d] = 1.0  # a gap in the class's slice range
                continue
            neighbours = [prototypes[(c, n)][0] / prototypes[(c, n)][1] for n in (d - 1, d + 1) if (c, n) in prototypes]
            if neighbours:
                own = prototypes[(c, d)][0] / prototypes[(c, d)][1]
                out.per_slice[c, d] = 1.0 - _cosine(own, np.mean(neighbours, axis=0))
        if np.isfinite(out.per_slice[c]).any():
            out.per_class[c] = float(np.nanmax(out.per_slice[c]))
    return out


def class_prototypes(inputs: CaseInputs) -> np.ndarray | None:
    """(C, K) float32: each class's occupancy-weighted mean embedding inside its label (NaN rows where none)."""
    if inputs.features.embeddings is None:
        return None
    prototypes = _slice_prototypes(inputs)
    channels = next(iter(inputs.features.embeddings.values())).shape[0]
    result = np.full((len(inputs.class_ids), channels), np.nan, dtype=np.float32)
    for c in range(len(inputs.class_ids)):
        parts = [value for (index, _), value in prototypes.items() if index == c]
        if parts:
            result[c] = sum(p[0] for p in parts) / sum(p[1] for p in parts)
    return result


def image_auv(inputs: CaseInputs) -> ScorerOutput:
    """Per-case value (C = 1): 1 - S of the encoded slices' embeddings."""
    if inputs.features.embeddings is None:
        return ScorerOutput(np.array([np.nan]), None, NO_EMBEDDINGS)
    slices = sorted(inputs.features.embeddings)
    z = torch.stack([inputs.features.embeddings[d].reshape(-1) for d in slices]).unsqueeze(0).float()
    scales = class_spectra(z, torch.ones(1, len(slices), dtype=torch.bool, device=z.device))
    value = float(scales.values[0])
    return ScorerOutput(np.array([1.0 - value if np.isfinite(value) else np.nan]), None, scales.reasons[0])


def stray_voxels(inputs: CaseInputs) -> ScorerOutput:
    out = inputs.nan_output(False)
    for c, class_id in enumerate(inputs.class_ids):
        components, count = ndimage.label(inputs.labels == class_id)
        if count:
            sizes = np.bincount(components.ravel())[1:]
            out.per_class[c] = 1.0 - sizes.max() / sizes.sum()
    return out


def edge_offset(inputs: CaseInputs) -> ScorerOutput:
    out = inputs.nan_output(True)
    pixel_mm = (inputs.spacing[1] + inputs.spacing[2]) / 2
    for c, class_id in enumerate(inputs.class_ids):
        sums = counts = np.zeros(2 * EDGE_RINGS + 1)
        for d in np.flatnonzero((inputs.labels == class_id).any(axis=(1, 2))):
            (slice_sums,), (slice_counts,) = ring_sums(inputs.volume[d], inputs.labels[d] == class_id)
            sums, counts = sums + slice_sums, counts + slice_counts
            out.per_slice[c, d] = offset_of(slice_sums, slice_counts) * pixel_mm
        out.per_class[c] = offset_of(sums, counts) * pixel_mm
    return out


def _evidence_scorer(name: str, per_slice: bool) -> Callable[[CaseInputs], ScorerOutput]:
    """A scorer that reads one value of the probe's evidence (:mod:`.evidence`) for each class."""

    def scorer(inputs: CaseInputs) -> ScorerOutput:
        if inputs.evidence is None:
            return inputs.nan_output(per_slice, inputs.evidence_reason or "the probe did not run")
        out = inputs.nan_output(per_slice)
        for c, found in enumerate(inputs.evidence):
            if found is None:
                continue
            out.per_class[c] = found.values.get(name, np.nan)
            if per_slice and name in found.per_slice:
                first = found.corner[0]
                out.per_slice[c, first : first + len(found.per_slice[name])] = found.per_slice[name]
        return out

    scorer.__name__ = name
    return scorer


#: The per-case scorers by name; ``image_auv`` gives one value per case, the others one per class.
CASE_SCORERS: dict[str, Callable[[CaseInputs], ScorerOutput]] = {
    "agreement": agreement,
    "fisher": fisher,
    "variance": variance,
    "boundary_gradient": boundary_gradient,
    "boundary_logits": boundary_logits,
    "boundary_distance": boundary_distance,
    "contrast": contrast,
    "homogeneity": homogeneity,
    "consistency": consistency,
    "image_auv": image_auv,
    "stray_voxels": stray_voxels,
    "edge_offset": edge_offset,
    **{name: _evidence_scorer(name, per_slice) for name, per_slice in EVIDENCE_SCORERS.items()},
}
