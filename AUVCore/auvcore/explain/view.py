"""What one explained class is made of: its slices, prompts, logits, energy spectrum and scores.

A :class:`ClassView` is built either by running the foundation model on the
class (:func:`auvcore.explain.live.compute_class_view`, the same code path as
``auv score``) or from a results folder's case record and feature cache
(:func:`stored_class_view`), where the stored S and scorer values are reused
as they are. This module needs no PyTorch (``auv report`` reads through it);
only a case without a feature cache brings the model in.

Example:
    >>> view = stored_class_view("results", "ct", "liver")  # doctest: +SKIP
    >>> view.S, view.normaliser, len(view.slices)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..imaging import DEFAULT_CT_WINDOW, LoadedCase, detect_modality, load_case, normalise_intensity
from ..prompts import slice_boxes
from ..results import CaseRecord, ResultsFolder, read_case_record
from .cache import ClassArrays, StoredProposal, add_class_arrays, load_class_arrays, load_proposal

if TYPE_CHECKING:
    from ..backends.base import FoundationBackend
    from ..cohort.settings import ScoreSettings

#: A case-level scorer (one value per case, not per class): it has no place on a class's page.
CASE_LEVEL = frozenset({"image_auv"})


@dataclass(frozen=True)
class ClassView:
    """One class of one case, as the explain page shows it.

    Attributes:
        image: float32 (D, H, W), the intensities scaled to [0, 1] as the model saw them.
        mask: bool (D, H, W), the class's voxels.
        slices: the n_c slices (axis 0) that hold the class, the rows of z_c.
        boxes: float32 (n_c, 4), the box prompt ``(x0, y0, x1, y1)`` of each slice.
        logits: float32 (n_c, h, w), the mask logits (the rows of z_c), or None.
        energy: float64 (n_c,), the normalised energy distribution p, largest first.
        S: the semantic perception scale (None where undefined).
        columns: N = h * w, the length of one row of z_c.
        scores: the other scorers' values for the class (higher = more suspect).
        source: how the numbers were obtained, for the page.
        proposal: the model's mask under label-independent prompts and its disagreement with the label
            (:func:`auvcore.explain.cache.load_proposal`), where the case was scored with the probe.
    """

    case_id: str
    class_id: int
    name: str
    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float]
    slices: np.ndarray
    boxes: np.ndarray
    logits: np.ndarray | None
    energy: np.ndarray
    S: float | None
    columns: int
    missing_reason: str | None
    scores: dict[str, float | None] = field(default_factory=dict)
    source: str = ""
    image_path: str = ""
    label_path: str = ""
    proposal: StoredProposal | None = None

    @property
    def rows(self) -> int:
        return len(self.slices)

    @property
    def normaliser(self) -> float:
        """log min(n_c, N), the denominator of S in :func:`auvcore.spectrum.class_spectra`."""
        return math.log(max(min(self.rows, self.columns), 2))

    @property
    def entropy(self) -> float:
        """-sum p log p of the energy distribution."""
        p = self.energy[self.energy > 0]
        return float(-(p * np.log(p)).sum())

    @property
    def U(self) -> float | None:
        return None if self.S is None else 1.0 - self.S

    def mask_fit(self) -> tuple[float | None, str]:
        """(Dice of the model's mask and the label, where it comes from): the stored ``agreement`` (1 - Dice) where
        the case was scored with it, else the cached logits (> 0) against the label on the logit grid (nearest
        neighbour), pooled over the class's slices; None without logits. S says nothing of this, so the page shows both.

        Example:
            >>> mask = np.zeros((1, 2, 2), dtype=bool); mask[0, 0] = True
            >>> view = ClassView("c", 1, "x", np.zeros((1, 2, 2)), mask, (1.0, 1.0, 1.0), np.array([0]), np.zeros((1, 4)),
            ...                  np.array([[[1.0, 1.0], [1.0, -1.0]]]), np.array([1.0]), 0.5, 4, None)
            >>> view.mask_fit()
            (0.8, 'the cached mask logits against the label')
        """
        agreement = self.scores.get("agreement")
        if agreement is not None and math.isfinite(agreement):
            return 1.0 - agreement, "1 − agreement, as scored"
        if self.logits is None:
            return None, "no mask logits cached"
        grid = self.logits.shape[1:]
        rows = np.floor((np.arange(grid[0]) + 0.5) * self.mask.shape[1] / grid[0]).astype(int)
        columns = np.floor((np.arange(grid[1]) + 0.5) * self.mask.shape[2] / grid[1]).astype(int)
        truth = self.mask[np.asarray(self.slices)][:, rows][:, :, columns]
        predicted = np.nan_to_num(self.logits, nan=-1.0) > 0  # outside the cached crop: the background's "no"
        total = float(predicted.sum() + truth.sum())
        return (2.0 * float((predicted & truth).sum()) / total if total else None), "the cached mask logits against the label"


def resolve_class(labels: np.ndarray, names: dict[int, str], class_name: str, label_path: str | Path) -> int:
    """The label value of ``class_name`` (a name, ``label_<id>`` or the id); InputError when it cannot be explained."""
    present = [int(v) for v in np.unique(labels) if v != 0]
    known = {**{name: class_id for class_id, name in names.items()}, **{f"label_{c}": c for c in present}}
    if class_name in known:
        class_id = known[class_name]
    elif class_name.isdigit():
        class_id = int(class_name)
    else:
        listed = ", ".join(sorted({names.get(c, f"label_{c}") for c in present}))
        raise InputError(label_path, f"has no class named {class_name!r}; the classes it holds are: {listed}")
    if class_id not in present:
        raise InputError(label_path, f"class {class_name!r} (label {class_id}) is absent from the label map")
    n_slices = int((labels == class_id).any(axis=(1, 2)).sum())
    if n_slices < 2:
        raise InputError(label_path, f"class {class_name!r} is on {n_slices} slice; S needs at least 2 "
                                     "(its slices are the rows of z_c)")
    return class_id


def build_view(case: LoadedCase, volume: np.ndarray, case_id: str, class_id: int, name: str, arrays: ClassArrays,
          S: float | None, reason: str | None, scores: dict[str, float | None], source: str,
          proposal: StoredProposal | None = None) -> ClassView:
    assert case.labels is not None
    boxes = slice_boxes(case.labels, [class_id])
    columns = int(np.prod(arrays.logits.shape[1:])) if arrays.logits is not None else 0
    return ClassView(case_id, class_id, name, volume, case.labels == class_id, case.spacing, arrays.slices,
                     boxes.boxes[0, arrays.slices], arrays.logits, arrays.spectrum, S, columns, reason, scores,
                     source, case.image_path, case.label_path or "", proposal)


def read_scored_case(folder: ResultsFolder, case_id: str) -> CaseRecord:
    """A scored case's record in a results folder; InputError when it is missing, failed or label-free."""
    path = folder.case_json(case_id)
    if not path.is_file():
        known = sorted(p.name.removesuffix(".json") for p in folder.cases_dir.glob("*.json"))
        raise InputError(folder.root, f"has no case {case_id!r}; its cases are: {', '.join(known) or 'none'}")
    record = read_case_record(path)
    if not record.ok:
        raise InputError(path, f"holds no scores (status {record.status!r}: {record.error})")
    if record.mode != "classwise" or record.label is None:
        raise InputError(path, "was scored in image mode: it has no classes to explain")
    return record


def stored_class_view(results: str | Path | ResultsFolder, case_id: str, class_name: str,
                      settings: ScoreSettings | None = None, backend: FoundationBackend | None = None,
                      run_model: bool = True) -> ClassView:
    """A scored case's class from its results folder: the stored S and scores, the cached logits and spectrum.

    A case scored before the feature cache existed has its class run through
    the model once (unless ``run_model`` is False: then InputError), with
    ``settings``' device and checkpoint; the arrays are then added to its cache.
    """
    folder = results if isinstance(results, ResultsFolder) else ResultsFolder(Path(results))
    record = read_scored_case(folder, case_id)
    case_json = folder.case_json(case_id)
    classes = {c.name: c for c in record.classes}
    entry = classes.get(class_name) or next((c for c in record.classes if str(c.id) == class_name), None)
    if entry is None:
        why = "is absent from its label map" if class_name in (record.absent_classes or ()) else "is not a class it holds"
        raise InputError(case_json, f"class {class_name!r} {why}; the classes it holds are: {', '.join(sorted(classes))}")
    if entry.S is None:
        raise InputError(case_json, f"class {class_name!r} has no S: {entry.missing_reason}")
    assert record.label is not None
    case = load_case(folder.recorded_path(record.image), folder.recorded_path(record.label))
    volume = normalise_intensity(case.image, record.modality or detect_modality(case.image), tuple(record.settings.get("ct_window", DEFAULT_CT_WINDOW)))
    arrays = load_class_arrays(case_json, entry.id)
    source = f"stored in {case_json}"
    if arrays is None and not run_model:
        raise InputError(case_json, f"has no cached features of {class_name!r} (scored before auv explain existed)")
    if arrays is None:
        from .live import class_backend, run_model as run  # PyTorch: only for a case scored without a feature cache

        backend = backend or class_backend(record.backbone, settings)
        arrays, new_arrays, _, _, _ = run(case, volume, entry.id, backend)
        add_class_arrays(case_json, new_arrays)
        source += f" (its logits and spectrum computed now by {backend.name} and added to its feature cache)"
    scores = {name: values.classes.get(entry.name) for name, values in record.scores.items() if name not in CASE_LEVEL}
    proposal = load_proposal(case_json, entry.id)
    if proposal is not None and not np.array_equal(case.labels[proposal.window()] == entry.id, proposal.proposal ^ (proposal.disagreement != 0)):
        proposal = None  # the label changed since it was scored: its disagreement map no longer describes it
    return build_view(case, volume, record.case_id, entry.id, entry.name, arrays, entry.S, entry.missing_reason, scores,
                      source, proposal)
