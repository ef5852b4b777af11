"""Corrected labels, ``corrections/<case>`` beside ``review.json``: a reviewer's fix as part of the results.

A correction is a whole label map on the grid of the case's source label, with the
source's label values and pixel type. Saving one records the verdict ``fixed`` for
every structure that differs from the source (voxels added and removed, the Dice of
the corrected structure to the original), the file's SHA-256, and the source it was
made from, in ``review.json`` under the review's lock. The source label is only ever
read. One correction per case is current (``corrections/<case>.nii.gz``, or the
source's own extension); a second save keeps the earlier one as
``corrections/<case>.<n>.nii.gz`` and the verdicts that named it follow it there.

Every command that reads labels asks :func:`label_for` which one to use: the
current correction where there is one (checked against its recorded SHA-256 and the
source's grid and class values), else the source.

The order of a save makes every interruption safe: the new map is written to a
temporary file; the current correction, if any, is hard-linked to its kept name;
the temporary file is flushed and renamed over the current one; ``review.json`` is
written last. A process killed before the rename leaves every file as it was; one
killed after it leaves ``review.json`` naming the previous correction, whose content
is whole under its kept name, which :func:`label_for` finds by its SHA-256.

Torch-free; SimpleITK and NumPy load when a label map is read or written.

Example:
    >>> import tempfile, numpy as np, SimpleITK as sitk
    >>> root = Path(tempfile.mkdtemp())
    >>> source = sitk.GetImageFromArray(np.pad(np.ones((2, 3, 3), np.uint8), 1))
    >>> sitk.WriteImage(source, str(root / "label.nii.gz"))
    >>> fixed = sitk.GetArrayFromImage(source); fixed[1, 1, 1:3] = 0
    >>> corrected = sitk.GetImageFromArray(fixed); corrected.CopyInformation(source)
    >>> folder = ResultsFolder(root / "results")
    >>> saved = save_correction(folder, "c1", corrected, source=root / "label.nii.gz", class_names={1: "liver"})
    >>> saved.file, [(c.structure, c.added, c.removed, round(c.dice, 3)) for c in saved.changes]
    ('corrections/c1.nii.gz', [('liver', 0, 2, 0.941)])
    >>> choice = label_for(folder, "c1", root / "label.nii.gz")
    >>> choice.corrected, choice.path.name
    (True, 'c1.nii.gz')
    >>> label_for(folder, "c1", root / "label.nii.gz", original=True).describe()
    'the source label (--original-labels)'
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..files import atomic_writer, file_sha256
from .layout import CORRECTIONS_DIR, ResultsFolder, safe_file_name
from .review import FIXED, Review, Verdict, load_review, review_lock, write_review

if TYPE_CHECKING:
    import numpy as np
    import SimpleITK as sitk

    from ..imaging import Geometry
    from .case_record import CaseRecord

#: Extensions a correction keeps from its source; any other source (a DICOM folder) gets ``.nii.gz``.
KEPT_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
DEFAULT_EXTENSION = ".nii.gz"
#: Physical tolerance (mm, or direction cosine) for "the same grid".
GRID_TOLERANCE = 1e-4
#: The case record's field that keeps its scores from before its correction was scored.
BEFORE_CORRECTION = "before_correction"


@dataclass(frozen=True)
class StructureChange:
    """How one structure (a label value) of a correction differs from the source.

    ``dice`` is the Dice between the original and the corrected structure (None when both are empty).
    """

    structure: str
    value: int
    added: int
    removed: int
    dice: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"structure": self.structure, "value": self.value, "added": self.added, "removed": self.removed,
                "dice": self.dice}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StructureChange:
        dice = data.get("dice")
        return cls(str(data["structure"]), int(data["value"]), int(data["added"]), int(data["removed"]),
                   None if dice is None else float(dice))


@dataclass(frozen=True)
class Correction:
    """One saved correction of a case, as ``review.json`` records it.

    Attributes:
        file: the correction's path inside the results folder (posix), e.g. ``corrections/ct_7.nii.gz``.
        sha256: the file's content hash when it was saved.
        source, source_sha256: the label it corrects, as the case record names it, and its hash then.
        changes: every structure whose voxels differ from the source.
        scores_before: per changed structure, its ``<scorer>_z`` values in ``structures.csv`` when it was saved.
        proposal: True when the reviewer accepted a proposed correction as it was.
    """

    case_id: str
    file: str
    sha256: str
    source: str
    source_sha256: str
    time: str
    reviewer: str = ""
    note: str = ""
    proposal: bool = False
    changes: tuple[StructureChange, ...] = ()
    scores_before: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def structures(self) -> tuple[str, ...]:
        return tuple(change.structure for change in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "file": self.file, "sha256": self.sha256, "source": self.source,
                "source_sha256": self.source_sha256, "time": self.time, "reviewer": self.reviewer, "note": self.note,
                "proposal": self.proposal, "changes": [change.to_dict() for change in self.changes],
                "scores_before": self.scores_before}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Correction:
        return cls(str(data["case_id"]), str(data["file"]), str(data["sha256"]), str(data["source"]),
                   str(data["source_sha256"]), str(data.get("time") or ""), str(data.get("reviewer") or ""),
                   str(data.get("note") or ""), bool(data.get("proposal", False)),
                   tuple(StructureChange.from_dict(c) for c in data.get("changes") or ()),
                   {str(k): {str(s): float(v) for s, v in z.items()} for k, z in (data.get("scores_before") or {}).items()})


@dataclass(frozen=True)
class LabelChoice:
    """The label a command uses for a case, and why."""

    case_id: str
    path: Path
    correction: Correction | None
    source: Path | None
    original_asked: bool = False
    note: str = ""

    @property
    def corrected(self) -> bool:
        return self.correction is not None

    def describe(self) -> str:
        if self.correction is not None:
            text = f"the corrected label {self.correction.file} (saved {self.correction.time})"
            return f"{text}; {self.note}" if self.note else text
        return "the source label (--original-labels)" if self.original_asked else "the source label"


def correction_extension(source: str | Path) -> str:
    """The file extension a correction of ``source`` gets.

    Example:
        >>> correction_extension("labels/case_3.nrrd"), correction_extension("dicom_seg_folder")
        ('.nrrd', '.nii.gz')
    """
    name = Path(source).name.lower()
    return next((suffix for suffix in KEPT_EXTENSIONS if name.endswith(suffix)), DEFAULT_EXTENSION)


def _kept_name(current: str, number: int) -> str:
    """``corrections/c.nii.gz`` and 2 -> ``corrections/c.2.nii.gz``."""
    folder, _, name = current.rpartition("/")
    stem, extension = _split_extension(name)
    return f"{folder}/{stem}.{number}{extension}"


def _split_extension(name: str) -> tuple[str, str]:
    extension = next((s for s in KEPT_EXTENSIONS if name.lower().endswith(s)), Path(name).suffix)
    return name[: len(name) - len(extension)], extension


def _next_kept_number(folder: ResultsFolder, current: str) -> int:
    stem, extension = _split_extension(current.rpartition("/")[2])
    pattern = re.compile(rf"{re.escape(stem)}\.(\d+){re.escape(extension)}$")
    taken = [int(m.group(1)) for p in folder.corrections_dir.glob(f"{stem}.*") if (m := pattern.match(p.name))]
    return max(taken, default=0) + 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (datetime.UTC needs 3.11)


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _grid_difference(a: Geometry, b: Geometry) -> str | None:
    """None when two grids share size, spacing, origin and direction; else what differs."""
    import numpy as np

    if tuple(a.size) != tuple(b.size):
        return f"size {tuple(a.size)} against {tuple(b.size)}"
    for what, x, y in (("spacing", a.spacing, b.spacing), ("origin", a.origin, b.origin),
                       ("direction", a.direction, b.direction)):
        if not np.allclose(x, y, atol=GRID_TOLERANCE, rtol=GRID_TOLERANCE):
            return f"{what} {tuple(round(v, 4) for v in x)} against {tuple(round(v, 4) for v in y)}"
    return None


def _file_grid(path: Path) -> Geometry:
    """A label file's grid, read from its header only (a DICOM folder is read whole)."""
    from ..imaging import Geometry, read_image

    return Geometry.of(read_image(path)) if path.is_dir() else Geometry.of_file(path)


def _label_values(image: sitk.Image, where: str | Path) -> np.ndarray:
    import numpy as np
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image)
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        raise InputError(where, "is not a 3D label map of one value per voxel")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise InputError(where, "is not a label map: it holds non-integer values")
    array = np.asarray(values).astype(np.int64)
    if array.size and array.min() < 0:
        raise InputError(where, f"is not a label map: it holds negative values (min {array.min()})")
    return array


def structure_changes(original: np.ndarray, corrected: np.ndarray, names: Mapping[int, str]) -> tuple[StructureChange, ...]:
    """Every label value whose voxels differ between two label maps of one grid.

    Example:
        >>> import numpy as np
        >>> before, after = np.array([0, 1, 1, 2, 2]), np.array([1, 1, 0, 2, 2])
        >>> [(c.structure, c.added, c.removed, c.dice) for c in structure_changes(before, after, {1: "liver"})]
        [('liver', 1, 1, 0.5)]
    """
    import numpy as np

    # Only the differing voxels can change a structure: look at them, not at every value's whole mask.
    differ = original != corrected
    was_there, now_there = original[differ], corrected[differ]
    changes = []
    for value in sorted((set(np.unique(was_there).tolist()) | set(np.unique(now_there).tolist())) - {0}):
        added, removed = int(np.count_nonzero(now_there == value)), int(np.count_nonzero(was_there == value))
        before = int(np.count_nonzero(original == value))
        total = before + before - removed + added
        dice = 2.0 * (before - removed) / total if total else None
        changes.append(StructureChange(names.get(int(value), f"label_{value}"), int(value), added, removed, dice))
    return tuple(changes)


def _scores_before(folder: ResultsFolder, case_id: str, structures: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The changed structures' ``<scorer>_z`` values in ``structures.csv`` now (empty where it has none)."""
    if not folder.structures_csv.exists() or not structures:
        return {}
    import csv

    before: dict[str, dict[str, float]] = {}
    with folder.structures_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("case_id") == case_id and row.get("class") in structures:
                values = {}
                for key, text in row.items():
                    if key.endswith("_z") and text not in (None, ""):
                        number = float(text)
                        if number == number:
                            values[key] = number
                before[row["class"]] = values
    return before


def _case_source(folder: ResultsFolder, case_id: str, review: Review) -> Path:
    """The source label of a case: the one its first correction was made from, else its record's."""
    history = review.corrections.get(case_id)
    if history:
        return folder.recorded_path(history[0].source)
    from .case_record import read_case_record

    record_path = folder.case_json(case_id)
    if not record_path.exists():
        raise InputError(folder.root, f"has no case {case_id!r} (no {record_path.relative_to(folder.root)}); "
                         "a correction belongs to a scored case")
    record = read_case_record(record_path)
    if not record.label:
        raise InputError(record_path, "names no label: a case scored without labels has nothing to correct")
    return folder.recorded_path(record.label)


def _class_names(folder: ResultsFolder, case_id: str) -> dict[int, str]:
    from .case_record import read_case_record

    path = folder.case_json(case_id)
    if not path.exists():
        return {}
    return {c.id: c.name for c in read_case_record(path).classes}


def save_correction(folder: ResultsFolder, case_id: str, corrected: sitk.Image, *, source: str | Path | None = None,
                    class_names: Mapping[int, str] | None = None, note: str = "", proposal: bool = False,
                    reviewer: str | None = None) -> Correction:
    """Save ``corrected`` as the correction of ``case_id`` and record ``fixed`` for each structure it changes.

    Args:
        folder: the results folder.
        corrected: the whole corrected label map, on the source label's grid.
        source: the label it corrects; default: the one the case's first correction, else its record, names.
        class_names: label value -> structure name, beside the case record's classes (values the source
            lacks are accepted only when named here or there).
        note: the reviewer's note, kept with the correction and its verdicts.
        proposal: the reviewer accepted a proposed correction unchanged.
        reviewer: who saved it (default: the user name).

    Raises:
        InputError: naming the file, for another grid, unknown label values, a correction that changes
            nothing, or a case the folder does not hold; nothing is written then.
    """
    import numpy as np
    import SimpleITK as sitk

    from ..imaging import Geometry, read_image

    folder.corrections_dir.mkdir(parents=True, exist_ok=True)
    with review_lock(folder.review):
        review = load_review(folder.review)
        source_path = Path(source) if source is not None else _case_source(folder, case_id, review)
        current = folder.correction(case_id, correction_extension(source_path))
        where = f"the correction of {case_id} ({current})"
        original = read_image(source_path)
        problem = _grid_difference(Geometry.of(corrected), Geometry.of(original))
        if problem:
            raise InputError(where, f"is not on the grid of its source {source_path}: {problem}")
        names = {**_class_names(folder, case_id), **dict(class_names or {})}
        before, after = _label_values(original, source_path), _label_values(corrected, where)
        # A value the source lacks can only be at a voxel the correction changed.
        new_values = set(np.unique(after[before != after]).tolist()) - set(names) - {0}
        unknown = sorted(v for v in new_values if not np.any(before == v))
        if unknown:
            raise InputError(where, f"holds label values {unknown} that neither its source {source_path} nor the "
                             "class table has")
        changes = structure_changes(before, after, names)
        if not changes:
            raise InputError(where, f"is identical to its source {source_path}: there is nothing to save")
        relative = current.relative_to(folder.root).as_posix()
        kept: str | None = None
        output = sitk.GetImageFromArray(after.astype(sitk.GetArrayViewFromImage(original).dtype, copy=False))
        output.CopyInformation(original)
        for orphan in folder.corrections_dir.glob(f".{current.name}.*"):
            orphan.unlink()  # a killed save's temporary file; under the lock no other save is writing
        with atomic_writer(current, suffix=correction_extension(source_path)) as temporary:
            try:
                sitk.WriteImage(output, str(temporary), useCompression=True)
            except RuntimeError as error:
                raise InputError(current, f"cannot be written: {str(error).strip().splitlines()[-1]}") from None
            kept = _keep_previous(folder, review.corrections.get(case_id, []), current, relative)
        saved = Correction(case_id, relative, file_sha256(current), str(source_path), file_sha256(source_path), _now(),
                           _reviewer() if reviewer is None else reviewer, note, proposal, changes,
                           _scores_before(folder, case_id, tuple(c.structure for c in changes)))
        review.add_correction(saved, kept)
        write_review(folder.review, review)
    return saved


def _keep_previous(folder: ResultsFolder, history: list[Correction], current: Path, relative: str) -> str | None:
    """Keep the recorded current correction under a numbered name before a new one replaces it; return that name.

    After an interrupted save the current file holds content that was never recorded, and the recorded one
    is already kept: that kept file is returned, and the unrecorded content is replaced.
    """
    if not current.exists() or not history or history[-1].file != relative:
        return None
    if file_sha256(current) != history[-1].sha256:
        found = _find_kept(folder, history[-1])
        return None if found is None else found.relative_to(folder.root).as_posix()
    kept = _kept_name(relative, _next_kept_number(folder, relative))
    os.link(current, folder.root / kept)
    return kept


def load_corrections(folder: ResultsFolder) -> dict[str, list[Correction]]:
    """Every case's corrections, oldest first (the last one is current)."""
    return load_review(folder.review).corrections


def _find_kept(folder: ResultsFolder, correction: Correction) -> Path | None:
    """The kept copy of ``correction`` when an interrupted save replaced its file (matched by SHA-256)."""
    stem, extension = _split_extension(Path(correction.file).name)
    for candidate in sorted(folder.corrections_dir.glob(f"{stem}.*{extension}")):
        if candidate.name != Path(correction.file).name and file_sha256(candidate) == correction.sha256:
            return candidate
    return None


def label_for(folder: ResultsFolder, case_id: str, source: str | Path | None = None, *, original: bool = False,
              corrections: Mapping[str, list[Correction]] | None = None) -> LabelChoice:
    """The label to use for ``case_id``: its current correction, else ``source`` (or the record's label).

    Args:
        folder: the results folder that may hold corrections.
        case_id: the case.
        source: the case's label as the caller knows it (a dataset's label file); default: the correction's
            recorded source, else the case record's label.
        original: use the source even where there is a correction (``--original-labels``).
        corrections: :func:`load_corrections`' answer, to read ``review.json`` once for many cases.

    Raises:
        InputError: naming both files, when the correction is no longer on its source's grid, holds a value
            the source no longer has, or its file is missing or changed since it was saved.
    """
    history = (load_corrections(folder) if corrections is None else corrections).get(case_id) or []
    if history and (source is None or _inside(folder.corrections_dir, Path(source))):
        source = folder.recorded_path(history[0].source)  # a table that names the correction it was scored with
    elif source is None:
        source = _case_source(folder, case_id, Review())
    source_path = Path(source)
    if original or not history:
        return LabelChoice(case_id, source_path, None, source_path, original_asked=original and bool(history))
    latest = history[-1]
    path, note = folder.root / latest.file, ""
    if not path.exists():
        raise InputError(path, f"is missing: review.json records it as the correction of {case_id} "
                         f"(use --original-labels to use {source_path})")
    if file_sha256(path) != latest.sha256:
        kept = _find_kept(folder, latest)
        if kept is None:
            raise InputError(path, f"has changed since it was saved as the correction of {case_id} "
                             f"(SHA-256 {latest.sha256[:12]}... recorded); save the correction again")
        path, note = kept, f"{latest.file} holds an interrupted save; its recorded content is {kept.name}"
    _check_against_source(path, source_path, latest)
    return LabelChoice(case_id, path, latest, source_path, note=note)


def _inside(folder: Path, path: Path) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)


def scores_before_correction(previous: CaseRecord, label: Path) -> dict[str, Any] | None:
    """What a case's record keeps of its scores from before its correction: ``previous``'s own snapshot, or
    ``previous`` itself when it was scored with another label than ``label``; None when there is nothing to keep."""
    if not previous.ok:
        return None
    if BEFORE_CORRECTION in previous.extra:
        return previous.extra[BEFORE_CORRECTION]
    if previous.label is None or os.path.abspath(previous.label) == os.path.abspath(label):
        return None
    return {"label": previous.label, "auv": previous.auv, "S": previous.S,
            "classes": {c.name: c.S for c in previous.classes}, "case_scores": dict(previous.case_scores),
            "scores": {name: dict(values.classes) for name, values in previous.scores.items()}}


def _check_against_source(correction: Path, source: Path, recorded: Correction) -> None:
    """Refuse a correction whose source was edited since: another grid, or values the source and class table lack."""
    if not source.exists():
        raise InputError(source, f"does not exist; it is the source of the correction {correction}")
    problem = _grid_difference(_file_grid(correction), _file_grid(source))
    if problem:
        raise InputError(correction, f"no longer matches the grid of its source {source} ({problem}): the source "
                         "was changed after the correction was saved")
    if file_sha256(source) == recorded.source_sha256:
        return
    import numpy as np

    from ..imaging import read_image

    known = set(np.unique(_label_values(read_image(source), source)).tolist()) | {c.value for c in recorded.changes} | {0}
    extra = sorted(set(np.unique(_label_values(read_image(correction), correction)).tolist()) - known)
    if extra:
        raise InputError(correction, f"holds label values {extra} that its source {source} no longer has: the source "
                         "was changed after the correction was saved")


@dataclass(frozen=True)
class LabelsInUse:
    """The label each case of a command uses (:func:`labels_in_use`), and the line that says so."""

    choices: dict[str, LabelChoice]
    original: bool = False

    def path(self, case_id: str) -> Path:
        return self.choices[case_id].path

    @property
    def corrected(self) -> list[str]:
        return sorted(case for case, choice in self.choices.items() if choice.corrected)

    def summary(self, folder: ResultsFolder) -> str:
        """One line for the command's output: how many cases use a correction, and how to choose otherwise."""
        history = load_corrections(folder) if self.original else {}
        if self.original:
            skipped = sorted(case for case in self.choices if history.get(case))
            return (f"labels: the sources (--original-labels); {len(skipped)} case(s) have a correction in "
                    f"{folder.corrections_dir} that is not used" + (f": {', '.join(skipped)}" if skipped else ""))
        corrected = self.corrected
        if not corrected:
            return "labels: the sources (no case has a correction)"
        notes = [f"{case}: {self.choices[case].note}" for case in corrected if self.choices[case].note]
        return (f"labels: {len(corrected)} of {len(self.choices)} case(s) use their corrected label from "
                f"{folder.corrections_dir} ({', '.join(corrected)}); --original-labels uses the sources"
                + "".join(f"\nwarning: {note}" for note in notes))


def labels_in_use(folder: ResultsFolder, sources: Mapping[str, str | Path | None], *, original: bool = False) -> LabelsInUse:
    """The label of every case of ``sources`` (case id -> its source label): its correction in ``folder`` where
    there is one (unless ``original``), else the source. Cases without a label keep none.

    Raises:
        InputError: as :func:`label_for`, for a correction that no longer fits its source.
    """
    history = load_corrections(folder)
    choices = {}
    for case_id, source in sources.items():
        if source is None or str(source) == "":
            continue
        choices[case_id] = label_for(folder, case_id, source, original=original, corrections=history)
    return LabelsInUse(choices, original)
