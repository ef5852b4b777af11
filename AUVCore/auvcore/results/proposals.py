"""Proposed corrections: a structure's label remade by the model or by the image's edges, ready to be accepted.

When a case is scored with the label-independent probe (:mod:`auvcore.scorers.evidence`), its feature cache
keeps, per structure, the model's mask under prompts that do not follow the label, and where it disagrees
with the label (:func:`auvcore.explain.cache.load_proposal`). This module turns those into label maps on the
source label's own grid, for every face: ``auv propose``, the report, the Slicer module and the browser
workstation. A proposal is restricted to its structure: it changes only that structure's voxels and
background (inside the probe's boxes for the model's rules), never another structure's voxels. The ``edge``
rule needs no model: it moves the label onto the scored image's own intensity edge
(:func:`auvcore.scorers.edges.snap_to_edges`).

Accepting a proposal saves it through the corrections contract (:func:`save_correction` with
``proposal=True``): the verdict ``fixed`` for each structure it changes, the source label only read.

Torch-free: SimpleITK and NumPy.

Example:
    >>> folder = ResultsFolder(Path("results"))                                # doctest: +SKIP
    >>> proposed = proposed_label(folder, "lung1", ["lung tumour"])             # doctest: +SKIP
    >>> proposed.changes[0].added, proposed.changes[0].removed                 # doctest: +SKIP
    (12, 230)
    >>> accept_proposal(folder, "lung1", ["lung tumour"]).file                  # doctest: +SKIP
    'corrections/lung1.nrrd'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .case_record import CaseRecord, read_case_record
from .corrections import Correction, StructureChange, save_correction, structure_changes
from .layout import ResultsFolder

#: Values of :func:`disagreement_map`: the label has the structure and the model does not, and the reverse.
LABEL_ONLY, MODEL_ONLY = 1, 2


#: How a proposal is made: ``model``, the model's outline (restricted to the structure); ``targeted``, the label
#: without the parts the model's mask does not touch (:func:`targeted_correction`); ``edge``, the label shifted,
#: shrunk or grown in whole pixels onto the image's own edge (:func:`auvcore.scorers.edges.snap_to_edges`).
ProposalRule = Literal["model", "targeted", "edge"]
PROPOSAL_RULES: tuple[ProposalRule, ...] = ("model", "targeted", "edge")


def targeted_correction(label: np.ndarray, model: np.ndarray) -> np.ndarray:
    """The label (bool) without its parts (26-connected) that the model's mask does not touch: a stray blob goes,
    the boundary of every other part is kept. Where the model touches no part, the label is kept whole.

    On the lesion audit (``Testing/benchmarks/lesion_audit.py``) this never moved a label further from the clean
    one, where the model's outline did for 37 of 40 planted errors; it removes a planted blob in 5 of 8 (the model
    also outlines the others). Adding the model's mask on a slice just past the label's end where it matches the
    end slice fixed 7 of 8 missed end slices but spoilt 15 of the 32 other errors, so it is not done.

    Example:
        >>> label = np.zeros((4, 8, 8), bool); label[1:3, 2:5, 2:5] = True; label[2, 7, 7] = True  # a stray voxel
        >>> model = np.zeros_like(label); model[1:4, 2:5, 2:5] = True
        >>> fixed = targeted_correction(label, model)
        >>> bool(fixed[2, 7, 7]), int(fixed.sum()), int(label.sum())
        (False, 18, 19)
    """
    from scipy import ndimage

    parts, _ = ndimage.label(label, structure=np.ones((3, 3, 3), bool))
    touched = np.unique(parts[label & model])
    touched = touched[touched > 0]
    return np.isin(parts, touched) if touched.size else label.copy()


@dataclass(frozen=True)
class ProposedLabel:
    """A case's label map with proposals in place of some structures, on the scored label's grid.

    Attributes:
        image: the whole label map (the scored label's pixel type, size, spacing, origin, direction).
        label: the label file it was made from.
        changes: per structure, the voxels the proposal adds and removes and its Dice to the label.
    """

    case_id: str
    image: sitk.Image
    label: Path
    changes: tuple[StructureChange, ...]


def _scored_record(folder: ResultsFolder, case_id: str) -> CaseRecord:
    path = folder.case_json(case_id)
    if not path.is_file():
        raise InputError(folder.root, f"has no case {case_id!r} (no {path.relative_to(folder.root)})")
    record = read_case_record(path)
    if not record.ok or record.mode != "classwise" or not record.label:
        raise InputError(path, "holds no scored label map (a failed or label-free case has no proposal)")
    return record


def _orientation(image: sitk.Image) -> str:
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


def _structures(record: CaseRecord, names: Sequence[str] | None, where: Path) -> list[tuple[int, str]]:
    classes = {c.name: c.id for c in record.classes}
    if names is None:
        return sorted((value, name) for name, value in classes.items())
    unknown = [name for name in names if name not in classes]
    if unknown:
        raise InputError(where, f"has no structure {', '.join(map(repr, unknown))}; it holds: {', '.join(sorted(classes))}")
    return [(classes[name], name) for name in names]


def _oriented_label(folder: ResultsFolder, record: CaseRecord) -> tuple[sitk.Image, np.ndarray, Path]:
    """The scored label as read, and its voxels on the LPS grid the feature cache's crops refer to."""
    from ..imaging import read_image

    label_path = folder.recorded_path(record.label or "")
    source = read_image(label_path)
    return source, sitk.GetArrayFromImage(sitk.DICOMOrient(source, "LPS")), label_path


def _check_stored(array: np.ndarray, stored, class_id: int, name: str, label_path: Path, case_json: Path) -> None:
    """Refuse a stored proposal that no longer fits the label: outside its grid, or made from other voxels."""
    from ..explain.cache import StoredProposal

    assert isinstance(stored, StoredProposal)
    ends = [start + size for start, size in zip(stored.corner, stored.proposal.shape)]
    if any(end > limit for end, limit in zip(ends, array.shape)):
        raise InputError(label_path, f"is smaller than the grid {name!r} was scored on ({case_json}); score the case again")
    region = array[stored.window()] == class_id
    scored = stored.proposal ^ (stored.disagreement != 0)  # the label's voxels when it was scored
    if not np.array_equal(region, scored) or np.count_nonzero(region) != np.count_nonzero(array == class_id):
        raise InputError(label_path, f"has changed since {name!r} was scored ({case_json}): its proposal was made "
                         "from other voxels; score the case again")


def proposed_label(folder: ResultsFolder, case_id: str, structures: Sequence[str] | None = None,
                   rule: ProposalRule = "model") -> ProposedLabel:
    """The scored label of ``case_id`` with each of ``structures`` replaced by its proposal (made by ``rule``), on
    the label's own grid. By default the model's rules propose for every structure with a stored proposal, the
    ``edge`` rule (which needs no probe) for every structure of the case.

    Raises:
        InputError: naming the file, for a case or structure without a stored proposal (scored without the
            probe; the model's rules), or a label that changed since it was scored. The ``edge`` rule reads
            the image on the label's grid (resampled linearly where the grids differ).
    """
    from ..explain.cache import load_proposal

    if rule not in PROPOSAL_RULES:
        raise ValueError(f"rule must be one of {', '.join(PROPOSAL_RULES)}, got {rule!r}")
    record = _scored_record(folder, case_id)
    case_json = folder.case_json(case_id)
    source, array, label_path = _oriented_label(folder, record)
    wanted = _structures(record, structures, case_json)
    if rule == "edge":
        return _edge_proposal(folder, record, source, array, label_path, wanted)
    proposed = array.copy()
    found = 0
    for class_id, name in wanted:
        stored = load_proposal(case_json, class_id)
        if stored is None:
            if structures is None:
                continue
            raise InputError(case_json, f"has no proposal for {name!r}: score the case with the probe scorers "
                             "(--scorers all) and a backend that takes boxes (litemedsam)")
        _check_stored(array, stored, class_id, name, label_path, case_json)
        region = proposed[stored.window()]  # a view: the changes land in ``proposed``
        mask = targeted_correction(region == class_id, stored.proposal) if rule == "targeted" else stored.proposal
        region[(region == class_id) & ~mask] = 0
        region[mask & (region == 0)] = class_id
        found += 1
    if not found:
        raise InputError(case_json, "has no stored proposal: score the case with the probe scorers (--scorers all)")
    return _proposed(record.case_id, source, array, proposed, label_path, wanted)


def _proposed(case_id: str, source: sitk.Image, array: np.ndarray, proposed: np.ndarray, label_path: Path,
              wanted: Sequence[tuple[int, str]]) -> ProposedLabel:
    """The proposed LPS voxels back on the source label's grid, with what changed per structure."""
    image = sitk.GetImageFromArray(proposed.astype(array.dtype, copy=False))
    image.CopyInformation(sitk.DICOMOrient(source, "LPS"))
    back = sitk.DICOMOrient(image, _orientation(source))
    back.CopyInformation(source)
    names = {class_id: name for class_id, name in wanted}
    return ProposedLabel(case_id, back, label_path, structure_changes(array, proposed, names))


def _edge_proposal(folder: ResultsFolder, record: CaseRecord, source: sitk.Image, array: np.ndarray,
                   label_path: Path, wanted: Sequence[tuple[int, str]]) -> ProposedLabel:
    """The ``edge`` rule: each structure snapped to the scored image's edge, over background and its own voxels."""
    from ..imaging import read_image
    from ..scorers.edges import snap_to_edges

    scan = read_image(folder.recorded_path(record.image))
    if (scan.GetSize(), scan.GetSpacing(), scan.GetOrigin(), scan.GetDirection()) != \
            (source.GetSize(), source.GetSpacing(), source.GetOrigin(), source.GetDirection()):
        scan = sitk.Resample(scan, source, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)  # onto the label's grid
    volume = sitk.GetArrayFromImage(sitk.DICOMOrient(scan, "LPS"))
    proposed = array.copy()
    for class_id, _ in wanted:
        own = array == class_id
        snapped = snap_to_edges(volume, own)
        proposed[own & ~snapped] = 0
        proposed[snapped & (array == 0)] = class_id
    return _proposed(record.case_id, source, array, proposed, label_path, wanted)


def accept_proposal(folder: ResultsFolder, case_id: str, structures: Sequence[str] | None = None, note: str = "",
                    reviewer: str | None = None, rule: ProposalRule = "model") -> Correction:
    """Save the proposal of ``structures`` (default: every structure with one), made by ``rule``, as the case's
    correction, marked as an accepted proposal; the verdict ``fixed`` for each structure it changes.

    Raises:
        InputError: as :func:`proposed_label`, or :func:`save_correction` (a proposal identical to the label).
    """
    proposed = proposed_label(folder, case_id, structures, rule)
    record = _scored_record(folder, case_id)
    return save_correction(folder, case_id, proposed.image, class_names={c.id: c.name for c in record.classes},
                           note=note, proposal=True, reviewer=reviewer)


def disagreement_map(folder: ResultsFolder, case_id: str, structure: str) -> sitk.Image:
    """Where the label and the model disagree on ``structure``, as a uint8 map on the label's grid:
    :data:`LABEL_ONLY` (1) where the label has it and the model does not, :data:`MODEL_ONLY` (2) the reverse,
    0 elsewhere. The Slicer module and the browser show it as two segments."""
    from ..explain.cache import load_proposal

    record = _scored_record(folder, case_id)
    case_json = folder.case_json(case_id)
    ((class_id, name),) = _structures(record, [structure], case_json)
    stored = load_proposal(case_json, class_id)
    if stored is None:
        raise InputError(case_json, f"has no disagreement map for {name!r}: score the case with the probe scorers (--scorers all)")
    source, array, label_path = _oriented_label(folder, record)
    _check_stored(array, stored, class_id, name, label_path, case_json)
    values = np.zeros(array.shape, dtype=np.uint8)
    values[stored.window()] = np.where(stored.disagreement > 0, LABEL_ONLY, np.where(stored.disagreement < 0, MODEL_ONLY, 0))
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(sitk.DICOMOrient(source, "LPS"))
    back = sitk.DICOMOrient(image, _orientation(source))
    back.CopyInformation(source)
    return back
