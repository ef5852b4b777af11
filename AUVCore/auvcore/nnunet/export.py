"""``auv nnunet export``: the curated cohort of a results folder as an nnU-Net v2 raw dataset.

What is written, in ``$nnUNet_raw/DatasetNNN_NAME`` (nnU-Net's dataset format):

* ``imagesTr/<case>_0000.nii.gz`` and ``labelsTr/<case>.nii.gz`` for every retained case
  (``exclusions.json``, or the list given), its label the corrected one where the results
  folder holds a correction (``--original-labels``: the source), its class values renumbered
  1..K by class name, since nnU-Net needs consecutive labels;
* ``dataset.json``: channel name ``CT`` when every case is CT (nnU-Net's CT normalisation),
  else ``zscore``; the K classes; the file ending;
* ``auv_scales.json`` beside it: each case's per-class S, read from its case record in the
  results folder (nothing is rescored), which :class:`~auvcore.nnunet.trainers.nnUNetTrainerAUVWeighted`
  turns into class weights (:mod:`auvcore.nnunet.scales`).

Nothing is overwritten: an id that any dataset in ``$nnUNet_raw``, ``$nnUNet_preprocessed`` or
``$nnUNet_results`` already has is refused, and the dataset is written to a hidden folder first and
renamed into place under a lock, so an interrupted export leaves no dataset of that id behind.

Torch-free (SimpleITK and NumPy read and write the volumes).

Example:
    >>> dataset_folder_name(7, "Liver")
    'Dataset007_Liver'
    >>> export_dataset("results", dataset_id=7, raw="nnUNet_raw")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from ..curation import load_exclusions
from ..datasets import CaseSpec, results_folder_cases
from ..errors import InputError
from ..files import write_json_atomic
from ..imaging import read_image
from ..results import ResultsFolder, labels_in_use, read_case_record, safe_file_name
from .scales import SCALES_FILE, CaseScales

#: The environment variables of nnU-Net's three folders (nnU-Net's ``setting_up_paths``).
RAW, PREPROCESSED, RESULTS = "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"
FILE_ENDING = ".nii.gz"
#: nnU-Net names datasets ``Dataset%03d_NAME``; its ids run 1-999.
MAX_DATASET_ID = 999
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
LOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ExportedDataset:
    """What an export wrote: the dataset folder, its cases and classes, and what it left out."""

    folder: Path
    cases: tuple[str, ...]
    classes: tuple[str, ...]
    corrected: tuple[str, ...]
    excluded: tuple[str, ...]
    not_scored: tuple[str, ...]
    channel: str
    labels: str

    @property
    def name(self) -> str:
        return self.folder.name

    def describe(self) -> str:
        """The lines ``auv nnunet export`` prints."""
        lines = [f"wrote {self.folder}: {len(self.cases)} cases, {len(self.classes)} classes "
                 f"({', '.join(self.classes)}), channel {self.channel}",
                 f"{len(self.excluded)} excluded case(s)" + (f": {', '.join(self.excluded)}" if self.excluded else ""),
                 self.labels]
        if self.not_scored:
            lines.append(f"left out, not scored (no S): {', '.join(self.not_scored)}")
        lines.append(f"per-case, per-class S: {self.folder / SCALES_FILE}")
        return "\n".join(lines)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name for a dataset id and name (``Dataset%03d_NAME``)."""
    if not 1 <= dataset_id <= MAX_DATASET_ID:
        raise ValueError(f"an nnU-Net dataset id lies in 1-{MAX_DATASET_ID}, got {dataset_id}")
    if not _NAME.match(name):
        raise ValueError(f"dataset name {name!r}: use letters, digits, '_' and '-' (starting with a letter or digit)")
    return f"Dataset{dataset_id:03d}_{name}"


def nnunet_folder(variable: str, given: str | Path | None = None) -> Path | None:
    """The folder ``given``, else the one the environment variable names (None when unset)."""
    if given is not None:
        return Path(given)
    value = os.environ.get(variable)
    return Path(value) if value else None


def datasets_with_id(dataset_id: int, folders: Sequence[Path | None]) -> list[Path]:
    """Every dataset folder of ``dataset_id`` in ``folders`` (nnU-Net matches the ``DatasetNNN_`` prefix)."""
    prefix = f"Dataset{dataset_id:03d}_"
    return sorted(p for folder in folders if folder is not None and folder.is_dir()
                  for p in folder.iterdir() if p.name.startswith(prefix))


def _class_order(choices: Mapping[str, Path], specs: Mapping[str, CaseSpec], classes: Sequence[str] | None) -> list[str]:
    """The exported class names in label order: by their smallest source value, then by name.

    Each label map is read and let go (a cohort's labels need not fit in memory together).
    """
    first_value: dict[str, int] = {}
    for case_id, path in choices.items():
        label = read_image(path)  # kept alive while its array view is read
        for value in np.unique(sitk.GetArrayViewFromImage(label)).tolist():
            if value != 0:
                name = specs[case_id].name_of(int(value))
                first_value[name] = min(first_value.get(name, int(value)), int(value))
    if classes is not None:
        missing = [name for name in classes if name not in first_value]
        if missing:
            raise InputError(next(iter(choices.values())), f"no retained case holds the class(es) {', '.join(missing)}; "
                             f"the labels hold {', '.join(sorted(first_value))}")
        first_value = {name: first_value[name] for name in classes}
    if not first_value:
        raise InputError(next(iter(choices.values())), "no retained case holds a labelled class; nothing to train on")
    return sorted(first_value, key=lambda n: (first_value[n], n))


def _renumbered(array: np.ndarray, spec: CaseSpec, order: Sequence[str]) -> np.ndarray:
    """A label map with each class's values replaced by its 1-based place in ``order`` (others: 0)."""
    index = {name: i + 1 for i, name in enumerate(order)}
    out = np.zeros(array.shape, dtype=np.uint8 if len(order) < 256 else np.uint16)
    for value in np.unique(array).tolist():
        target = index.get(spec.name_of(int(value))) if value != 0 else None
        if target is not None:
            out[array == value] = target
    return out


def _write_image(source: Path, target: Path) -> None:
    """NIfTI copied byte for byte; any other format (NRRD, MHA, a DICOM series) converted."""
    if source.is_file() and source.name.lower().endswith(FILE_ENDING):
        shutil.copyfile(source, target)
    else:
        sitk.WriteImage(read_image(source), str(target), useCompression=True)


def _write_label(source: Path, spec: CaseSpec, order: Sequence[str], target: Path) -> None:
    """The label map renumbered to ``order``, on the source label's grid."""
    label = read_image(source)
    image = sitk.GetImageFromArray(_renumbered(sitk.GetArrayViewFromImage(label), spec, order))
    image.CopyInformation(label)
    sitk.WriteImage(image, str(target), useCompression=True)


def export_dataset(results: str | Path, dataset_id: int, name: str | None = None, raw: str | Path | None = None,
                   exclusions: str | Path | None = None, original_labels: bool = False,
                   classes: Sequence[str] | None = None) -> ExportedDataset:
    """Write the retained cases of ``results`` as nnU-Net raw dataset ``dataset_id`` (see the module docstring).

    Args:
        results: a results folder of ``auv score``.
        dataset_id: the nnU-Net dataset id (1-999); refused when a dataset of that id exists.
        name: the dataset's name (default: the results folder's name, made safe).
        raw: nnU-Net's raw folder (default: ``$nnUNet_raw``).
        exclusions: the exclusion list in force (default: the results folder's ``exclusions.json``, if any).
        original_labels: export the source labels even where the folder holds corrections.
        classes: the class names to keep (default: every class a retained label holds); others become background.

    Raises:
        InputError: naming the file or folder, for a folder that is not a results folder, a taken dataset id,
            unset ``nnUNet_raw``, an exclusion list that leaves nothing, or unreadable volumes.
    """
    from filelock import FileLock, Timeout

    folder = ResultsFolder.find(results)
    if not ResultsFolder.holds_results(folder.root):
        raise InputError(folder.root, "is not a results folder of `auv score` (no results.csv and cases/)")
    raw_folder = nnunet_folder(RAW, raw)
    if raw_folder is None:
        raise InputError(RAW, "is not set; set it to nnU-Net's raw data folder, or pass --raw")
    name = name or re.sub(r"[^A-Za-z0-9_-]", "_", folder.root.resolve().name).lstrip("_-") or "AUV"
    final = raw_folder / dataset_folder_name(dataset_id, name)

    specs = {s.case_id: s for s in results_folder_cases(folder)}
    exclusion_file = Path(exclusions) if exclusions is not None else folder.exclusions
    if exclusions is not None and not exclusion_file.is_file():
        raise InputError(exclusion_file, "does not exist (the exclusion list given with --exclusions)")
    excluded = sorted(load_exclusions(exclusion_file).excluded() & set(specs))
    records = {case_id: read_case_record(folder.case_json(case_id)) for case_id in specs if case_id not in excluded}
    not_scored = sorted(case_id for case_id, record in records.items() if not record.ok or specs[case_id].label is None)
    kept = [case_id for case_id in records if case_id not in not_scored]
    if not kept:
        raise InputError(exclusion_file, "leaves no scored, labelled case to export")
    in_use = labels_in_use(folder, {case_id: specs[case_id].label for case_id in kept}, original=original_labels)
    order = _class_order({c: in_use.path(c) for c in kept}, specs, classes)

    identifiers = {case_id: safe_file_name(case_id) for case_id in kept}
    if len(set(identifiers.values())) != len(identifiers):
        raise InputError(folder.results_csv, "holds case ids that become the same nnU-Net identifier once made safe")
    modalities = {(records[c].modality or "").lower() for c in kept}
    channel = "CT" if modalities == {"ct"} else "zscore"
    scales = CaseScales(tuple(order), {identifiers[c]: {k.name: k.S for k in records[c].classes if k.name in order}
                                       for c in kept})

    raw_folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(raw_folder / ".auv-export.lock"), timeout=LOCK_TIMEOUT_S):
            taken = datasets_with_id(dataset_id, [raw_folder, nnunet_folder(PREPROCESSED), nnunet_folder(RESULTS)])
            if taken:
                raise InputError(taken[0], f"already holds nnU-Net dataset {dataset_id}; choose another --dataset-id "
                                 "(an existing dataset is never overwritten)")
            staging = Path(tempfile.mkdtemp(prefix=f".auv-export-{dataset_id:03d}-", dir=raw_folder))
            try:
                (staging / "imagesTr").mkdir()
                (staging / "labelsTr").mkdir()
                for case_id in kept:
                    identifier, spec = identifiers[case_id], specs[case_id]
                    _write_image(spec.image, staging / "imagesTr" / f"{identifier}_0000{FILE_ENDING}")
                    _write_label(in_use.path(case_id), spec, order, staging / "labelsTr" / f"{identifier}{FILE_ENDING}")
                write_json_atomic(staging / "dataset.json", {
                    "channel_names": {"0": channel},
                    "labels": {"background": 0, **{n: i + 1 for i, n in enumerate(order)}},
                    "numTraining": len(kept),
                    "file_ending": FILE_ENDING,
                    "name": name,
                    "description": f"the retained cases of the AUV results folder {folder.root.resolve()} "
                                   f"(auv nnunet export); per-case, per-class S in {SCALES_FILE}",
                })
                scales.write(staging / SCALES_FILE, source=folder.root.resolve(), labels=in_use.summary(folder),
                             case_ids={identifiers[c]: c for c in kept}, excluded=excluded)
                staging.rename(final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except Timeout:
        raise InputError(raw_folder / ".auv-export.lock", "is held by another export; try again when it has finished") from None
    return ExportedDataset(final, tuple(identifiers[c] for c in kept), tuple(order), tuple(in_use.corrected),
                           tuple(excluded), tuple(not_scored), channel, in_use.summary(folder))
