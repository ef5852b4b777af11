"""The feature cache that ``auv explain`` and the Slicer module read: ``cases/<case>.features.npz``.

``auv score`` writes it beside each case's JSON, compressed, as it writes the
class prototypes. Per class (keys prefixed by the label value, ``"5/..."``):

* ``slices``: int32 (n_c,), the slices (axis 0 of the LPS volume) that hold the class;
* ``spectrum``: float64 (n_c,), the normalised energy distribution p of z_c
  (:attr:`auvcore.spectrum.SemanticScales.energy`), largest first: S is its entropy;
* ``logits``: int8 (n_c, h', w'), the model's mask logits on those slices in
  steps of :data:`LOGIT_STEP` (a heat map needs no finer ones), cropped to the
  class's boxes with a margin (far from its box a logit map holds only the
  background's strong "no"), and ``corner``: int32 (row, column) of the crop
  on the (h, w) logit grid (classwise mode, backends whose rows are slice maps).

Where the model was also prompted without the label's own boxes (the probe of
:mod:`auvcore.scorers.evidence`), per class on the label's own voxel grid:

* ``proposal``: uint8 (n, h'', w''), the model's mask under those prompts on
  the class's slice range widened by a slice at both ends, cropped to their
  boxes: the proposed correction of the structure;
* ``disagreement``: int8, the same crop: +1 where the label has the structure
  and the model does not, -1 where the model has it and the label does not;
* ``proposal_corner``: int32 (slice, row, column) of the crop in the LPS volume.

And once per case: ``grid`` (h, w), and the LPS geometry of the logit grid
(SimpleITK order: ``spacing`` x, y, z; ``direction`` row-major 3 x 3;
``origin``), so a viewer can lay the logits over the image without
resampling them. S itself is never recomputed from these: it is in the JSON.

Example:
    >>> arrays = {"5/spectrum": np.array([0.75, 0.25])}
    >>> save_feature_cache(Path(tmp) / "c1.json", arrays)               # doctest: +SKIP
    >>> load_class_arrays(Path(tmp) / "c1.json", 5).spectrum.tolist()   # doctest: +SKIP
    [0.75, 0.25]
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..files import atomic_write_bytes
from ..results.layout import FEATURES_SUFFIX

if TYPE_CHECKING:  # the readers below need numpy only, so the Slicer module can use them without torch
    from ..backends.base import CaseFeatures
    from ..imaging import Geometry, LoadedCase
    from ..spectrum import SemanticScales

#: A case's feature cache: array name -> array (see the module docstring).
FeatureArrays = dict[str, np.ndarray]
#: Logits are stored in steps of a quarter, clipped to the int8 range [-32, 31.75].
LOGIT_STEP = 0.25
#: The crop keeps this fraction of the boxes' size on each side, and at least MIN_MARGIN logit pixels:
#: enough to see the model's answer around the structure; the logits dominate the cache's size.
MARGIN_FRACTION = 0.3
MIN_MARGIN = 16


def features_path(case_json: Path) -> Path:
    """Where a case's feature cache lies, beside its JSON (:meth:`auvcore.results.ResultsFolder.features`)."""
    return case_json.with_name(case_json.name.removesuffix(".json") + FEATURES_SUFFIX)


def logit_grid_geometry(oriented: Geometry, grid: tuple[int, int]) -> dict[str, np.ndarray]:
    """The LPS geometry of the (h, w) logit grid that covers each (H, W) slice of ``oriented``.

    The backend resizes a slice to (h, w) with pixel centres at
    ``(i + 0.5) * H / h - 0.5`` in the slice's own index; the grid keeps the
    slice's extent and direction, with coarser spacing.

    Example:
        >>> from auvcore.imaging import Geometry
        >>> g = Geometry((4, 2, 3), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        >>> geometry = logit_grid_geometry(g, (1, 2))
        >>> geometry["spacing"].tolist(), geometry["origin"].tolist()
        ([2.0, 2.0, 2.0], [0.5, 0.5, 0.0])
    """
    width, height = oriented.size[0], oriented.size[1]
    h, w = grid
    scale = np.array([width / w, height / h, 1.0])
    spacing = np.asarray(oriented.spacing, dtype=np.float64)
    direction = np.asarray(oriented.direction, dtype=np.float64).reshape(3, 3)
    shift = direction @ (spacing * (scale - 1.0) / 2.0)
    return {"origin": np.asarray(oriented.origin, dtype=np.float64) + shift, "spacing": spacing * scale,
            "direction": direction.reshape(-1)}


def crop_box(boxes: np.ndarray, scale: float, grid: tuple[int, int]) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) on the logit grid around the union of a class's boxes (pixel ``(x0, y0, x1, y1)``), with the margin.

    Example:
        >>> crop_box(np.array([[10.0, 20.0, 30.0, 40.0]]), 1.0, (256, 256))
        (4, 57, 0, 47)
    """
    x0, y0 = np.nanmin(boxes[:, 0]) * scale, np.nanmin(boxes[:, 1]) * scale
    x1, y1 = (np.nanmax(boxes[:, 2]) + 1) * scale, (np.nanmax(boxes[:, 3]) + 1) * scale
    margin_y = max(MARGIN_FRACTION * (y1 - y0), MIN_MARGIN)
    margin_x = max(MARGIN_FRACTION * (x1 - x0), MIN_MARGIN)
    return (max(int(y0 - margin_y), 0), min(int(np.ceil(y1 + margin_y)), grid[0]),
            max(int(x0 - margin_x), 0), min(int(np.ceil(x1 + margin_x)), grid[1]))


def encode_logits(logits: np.ndarray) -> np.ndarray:
    """Float logits -> int8 steps of LOGIT_STEP (clipped)."""
    return np.clip(np.round(logits / LOGIT_STEP), -128, 127).astype(np.int8)


def feature_arrays(features: CaseFeatures, scales: SemanticScales, class_ids: Sequence[int], case: LoadedCase
                   ) -> FeatureArrays:
    """The arrays to cache for one scored case (see the module docstring); logits only where ``case`` has labels."""
    from ..prompts import slice_boxes  # scipy: only where scoring runs

    present = features.present.cpu().numpy()
    arrays: dict[str, np.ndarray] = {}
    with_logits = features.grid is not None and case.oriented is not None and case.labels is not None
    if with_logits:
        boxes = slice_boxes(case.labels, class_ids).boxes
        arrays.update(logit_grid_geometry(case.oriented, features.grid))
        arrays["grid"] = np.asarray(features.grid, dtype=np.int32)
        scale = features.grid[1] / case.oriented.size[0]
    for index, class_id in enumerate(class_ids):
        slices = np.flatnonzero(present[index]).astype(np.int32)
        arrays[f"{class_id}/slices"] = slices
        arrays[f"{class_id}/spectrum"] = scales.energy[index, : len(slices)].numpy()
        if with_logits and len(slices):
            row0, row1, col0, col1 = crop_box(boxes[index, slices], scale, features.grid)
            rows = features.z[index][features.present[index]]
            maps = rows.reshape(len(slices), *features.grid)[:, row0:row1, col0:col1]
            arrays[f"{class_id}/logits"] = encode_logits(maps.cpu().numpy())
            arrays[f"{class_id}/corner"] = np.array([row0, col0], dtype=np.int32)
    return arrays


def proposal_arrays(class_id: int, corner: Sequence[int], label: np.ndarray, model: np.ndarray) -> FeatureArrays:
    """One class's ``proposal``, ``disagreement`` and ``proposal_corner`` (see the module docstring) from the label's
    and the model's masks on the same crop.

    Example:
        >>> label, model = np.array([[[1, 1, 0]]], bool), np.array([[[0, 1, 1]]], bool)
        >>> proposal_arrays(3, (4, 0, 7), label, model)["3/disagreement"].tolist()
        [[[1, 0, -1]]]
    """
    return {f"{class_id}/proposal": model.astype(np.uint8),
            f"{class_id}/disagreement": label.astype(np.int8) - model.astype(np.int8),
            f"{class_id}/proposal_corner": np.asarray(corner, dtype=np.int32)}


@dataclass(frozen=True)
class StoredProposal:
    """One class's proposed correction and disagreement map from the feature cache, on the LPS label grid.

    Attributes:
        corner: (slice, row, column) of the crop's first voxel in the LPS-oriented volume.
        proposal: bool (n, h, w), the model's mask under prompts that do not follow the label.
        disagreement: int8 (n, h, w): +1 the label has the structure and the model does not, -1 the reverse.
    """

    class_id: int
    corner: tuple[int, int, int]
    proposal: np.ndarray
    disagreement: np.ndarray

    def window(self) -> tuple[slice, slice, slice]:
        """The crop's place in the LPS volume, to index its arrays with."""
        return tuple(slice(start, start + size) for start, size in zip(self.corner, self.proposal.shape))  # type: ignore[return-value]


def load_proposal(case_json: Path, class_id: int) -> StoredProposal | None:
    """A class's stored proposal and disagreement map, or None when its case's cache has none (scored without
    the probe, or by a backend that cannot take other boxes)."""
    path = features_path(case_json)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            if f"{class_id}/proposal" not in data.files:
                return None
            corner = tuple(int(v) for v in data[f"{class_id}/proposal_corner"])
            return StoredProposal(class_id, corner, data[f"{class_id}/proposal"].astype(bool),  # type: ignore[arg-type]
                                  data[f"{class_id}/disagreement"].astype(np.int8))
    except (OSError, ValueError, KeyError) as error:
        raise InputError(path, f"cannot be read as a feature cache: {error}") from None


def save_feature_cache(case_json: Path, arrays: FeatureArrays | None) -> None:
    """Write (atomically, compressed) the arrays beside ``case_json``; nothing when there are none."""
    if not arrays:
        return
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(features_path(case_json), buffer.getvalue())


def add_class_arrays(case_json: Path, arrays: dict[str, np.ndarray]) -> None:
    """Merge one class's arrays (and the grid geometry) into a case's cache, keeping what it held."""
    path = features_path(case_json)
    held: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            held = {key: data[key] for key in data.files}
    save_feature_cache(case_json, {**held, **arrays})


@dataclass(frozen=True)
class ClassArrays:
    """One class's cached arrays.

    Attributes:
        logits: float32 (n_c, h, w) on the whole logit grid, NaN outside the
            stored crop; None without a slice-map grid.
        geometry: the logit grid's LPS ``origin``, ``spacing``, ``direction``.
    """

    slices: np.ndarray
    spectrum: np.ndarray
    logits: np.ndarray | None
    geometry: dict[str, np.ndarray] | None


def class_arrays(data: Mapping[str, np.ndarray], class_id: int) -> ClassArrays | None:
    """A class's arrays from a cache's mapping (an open npz, or :func:`feature_arrays`' dict)."""
    keys = set(data.keys())
    if f"{class_id}/spectrum" not in keys:
        return None
    logits = None
    if f"{class_id}/logits" in keys:
        crop = data[f"{class_id}/logits"].astype(np.float32) * LOGIT_STEP
        row0, col0 = (int(v) for v in data[f"{class_id}/corner"])
        logits = np.full((crop.shape[0], *(int(v) for v in data["grid"])), np.nan, dtype=np.float32)
        logits[:, row0 : row0 + crop.shape[1], col0 : col0 + crop.shape[2]] = crop
    geometry = {key: np.asarray(data[key]) for key in ("origin", "spacing", "direction")} if "origin" in keys else None
    return ClassArrays(np.asarray(data[f"{class_id}/slices"]), np.asarray(data[f"{class_id}/spectrum"]), logits, geometry)


def load_class_arrays(case_json: Path, class_id: int) -> ClassArrays | None:
    """A class's cached arrays, or None when the case (or the class) has no cache."""
    path = features_path(case_json)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            return class_arrays(data, class_id)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(path, f"cannot be read as a feature cache: {error}") from None


def cache_bytes(case_json: Path) -> int:
    """The size on disk of a case's feature cache (0 when it has none)."""
    path = features_path(case_json)
    return path.stat().st_size if path.exists() else 0


def load_spectra(case_json: Path) -> dict[int, np.ndarray]:
    """Label value -> energy distribution p, for every class a case's feature cache holds (empty without a cache)."""
    path = features_path(case_json)
    if not path.exists():
        return {}
    try:
        with np.load(path) as data:
            return {int(key.split("/")[0]): data[key] for key in data.files if key.endswith("/spectrum")}
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot be read as a feature cache: {error}") from None
