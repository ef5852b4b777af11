"""Finding the cases of a cohort: nnU-Net / Decathlon folders, plain folders, CSV manifests.

Every layout becomes a list of :class:`CaseSpec` (case id, image, label, class
names). Duplicates and images without labels (or the reverse) are errors that
name the folder and the cases.

Example:
    >>> specs = discover_cases("Testing/data/sample_cohort/manifest.csv")  # doctest: +SKIP
    >>> [s.case_id for s in specs]  # doctest: +SKIP
    ['ct_full_model', 'ct_fast_model', 'ct_roi_subset', 'mr']
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .results.layout import ResultsFolder

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Suffixes that mark a label file beside its image in a flat folder.
LABEL_MARKERS = ("_seg", "_label", "_labels", "_mask", "_gt")
#: nnU-Net's channel suffix on image files (channel 0 is used).
CHANNEL_SUFFIX = re.compile(r"_(\d{4})$")
#: Columns only a results table of ``auv score`` has together: such a CSV is not a manifest of cases to score.
RESULTS_TABLE_COLUMNS = frozenset({"case_id", "auv", "status", "backbone", "mode"})


def absolute(path: str | Path) -> Path:
    """``path`` made absolute and normalised (``..`` removed) without following symbolic links.

    Example:
        >>> absolute("/data/cohort/../cohort/manifest.csv").as_posix()
        '/data/cohort/manifest.csv'
    """
    return Path(os.path.abspath(path))


@dataclass(frozen=True)
class CaseSpec:
    """One case of a cohort. ``label`` is None for label-free scoring.

    ``source`` names the scan or patient the case was cut from (a manifest's ``source`` column): cases of one
    source are not independent, so an audit keeps them together when it holds some out. None where not given.
    """

    case_id: str
    image: Path
    label: Path | None
    class_names: dict[int, str] = field(default_factory=dict, compare=False)
    #: The dataset.json-style file the class names came from (a manifest's ``label_names``, a dataset's ``dataset.json``).
    label_names: Path | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False)

    def name_of(self, class_id: int) -> str:
        return self.class_names.get(class_id, f"label_{class_id}")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _volumes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(VOLUME_SUFFIXES) and not p.name.startswith("."))


def read_label_names(path: Path) -> dict[int, str]:
    """Class names from a dataset.json-style ``labels`` map (nnU-Net v2 name->id or MSD id->name)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot be read as JSON: {error}") from None
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, dict):
        raise InputError(path, "has no 'labels' map")
    names: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit() and not str(key).isdigit()):
            names[int(value)] = str(key)  # nnU-Net v2: {"liver": 1}
        elif str(key).isdigit():
            names[int(key)] = str(value)  # Decathlon: {"1": "liver"}
        elif isinstance(value, list):
            continue  # nnU-Net region-based labels have no single id
        else:
            raise InputError(path, f"label entry {key!r}: {value!r} is neither name->id nor id->name")
    names.pop(0, None)
    return names


def _check_unique(specs: list[CaseSpec], where: Path) -> list[CaseSpec]:
    seen: dict[str, int] = {}
    for spec in specs:
        seen[spec.case_id] = seen.get(spec.case_id, 0) + 1
    duplicates = sorted(k for k, n in seen.items() if n > 1)
    if duplicates:
        raise InputError(where, f"has duplicate case ids: {', '.join(duplicates[:10])}")
    if not specs:
        raise InputError(where, "holds no cases")
    return specs


def _pair(images: dict[str, Path], labels: dict[str, Path], where: Path, names: dict[int, str],
          names_file: Path | None = None) -> list[CaseSpec]:
    unlabelled = sorted(set(images) - set(labels))
    orphans = sorted(set(labels) - set(images))
    if unlabelled or orphans:
        problems = []
        if unlabelled:
            problems.append(f"images without a label: {', '.join(unlabelled[:10])}")
        if orphans:
            problems.append(f"labels without an image: {', '.join(orphans[:10])}")
        raise InputError(where, "has missing pairs (" + "; ".join(problems) + ")")
    return [CaseSpec(case, images[case], labels[case], names, names_file) for case in sorted(images)]


def _image_case_ids(folder: Path) -> dict[str, Path]:
    """Case id -> image; nnU-Net's ``_0000`` channel suffix is dropped, other channels ignored."""
    found: dict[str, Path] = {}
    for path in _volumes(folder):
        stem = _stem(path)
        channel = CHANNEL_SUFFIX.search(stem)
        if channel and channel.group(1) != "0000":
            continue
        case = CHANNEL_SUFFIX.sub("", stem)
        if case in found:
            raise InputError(folder, f"has two images for case {case!r}: {found[case].name}, {path.name}")
        found[case] = path
    return found


def _from_image_label_folders(root: Path, image_dir: Path, label_dir: Path) -> list[CaseSpec]:
    dataset_json = root / "dataset.json"
    names = read_label_names(dataset_json) if dataset_json.exists() else {}
    labels = {_stem(p): p for p in _volumes(label_dir)}
    return _pair(_image_case_ids(image_dir), labels, root, names, dataset_json if dataset_json.exists() else None)


def _from_flat_folder(root: Path) -> list[CaseSpec]:
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    for path in _volumes(root):
        stem = _stem(path)
        marker = next((m for m in LABEL_MARKERS if stem.endswith(m)), None)
        if marker:
            labels[stem[: -len(marker)]] = path
        else:
            images[CHANNEL_SUFFIX.sub("", stem)] = path
    if not labels:
        return [CaseSpec(case, path, None) for case, path in sorted(images.items())]
    return _pair(images, labels, root, {})


def _from_manifest(path: Path) -> list[CaseSpec]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot be read as a CSV manifest: {error}") from None
    if rows and RESULTS_TABLE_COLUMNS <= set(rows[0]):
        raise InputError(path, "is a results table of `auv score`, not a manifest of cases to score: give the dataset or "
                               "manifest it was scored from (`auv filter` writes retained_manifest.csv, a manifest of the "
                               "cases it keeps)")
    if not rows or not {"case_id", "image"} <= set(rows[0]):
        raise InputError(path, "is not a manifest: it needs the columns case_id, image (and label)")
    base = path.parent
    names_cache: dict[Path, dict[int, str]] = {}
    specs = []
    for number, row in enumerate(rows, start=2):
        if not row.get("case_id") or not row.get("image"):
            raise InputError(path, f"line {number} has an empty case_id or image")
        label = (row.get("label") or "").strip()
        names_file = (row.get("label_names") or "").strip()
        names: dict[int, str] = {}
        names_path = base / names_file if names_file else None
        if names_path is not None:
            names = names_cache.setdefault(names_path, read_label_names(names_path))
        source = (row.get("source") or "").strip() or None
        specs.append(CaseSpec(row["case_id"].strip(), base / row["image"].strip(), base / label if label else None, names,
                              names_path, source=source))
    return specs


def discover_cases(dataset: str | Path) -> list[CaseSpec]:
    """The cases of a dataset folder or manifest.

    Accepted layouts:
        * a CSV manifest with columns ``case_id, image, label`` (optional
          ``label_names``: a dataset.json-style file of class names, and
          ``source``: the scan or patient a case was cut from); paths are
          relative to the manifest;
        * an nnU-Net raw dataset or a Medical Segmentation Decathlon task
          (``dataset.json``, ``imagesTr/``, ``labelsTr/``);
        * a folder with ``images/`` and ``labels/`` sub-folders of matching names;
        * a flat folder of images with labels named ``<case>_seg`` (or
          ``_label``, ``_mask``, ``_gt``); without any labels, images only.

    Paths are made absolute but symbolic links are kept as given: the cases'
    paths (and the manifests that curation writes from them) stay inside the
    folder the user named.

    Raises:
        InputError: naming the folder, for duplicates, missing pairs or no cases,
            or naming a results table given in place of a manifest.
    """
    root = absolute(dataset)
    if not root.exists():
        raise InputError(root, "does not exist")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise InputError(root, "is a single file; give a CSV manifest, a dataset folder, or an image with --label")
        return _check_unique(_from_manifest(root), root)
    for image_dir, label_dir in (("imagesTr", "labelsTr"), ("images", "labels")):
        if (root / image_dir).is_dir():
            if not (root / label_dir).is_dir():
                raise InputError(root, f"has {image_dir}/ but no {label_dir}/")
            return _check_unique(_from_image_label_folders(root, root / image_dir, root / label_dir), root)
    return _check_unique(_from_flat_folder(root), root)


def results_folder_cases(folder: ResultsFolder) -> list[CaseSpec]:
    """The cases of a results folder (its ``results.csv``), with the class names their records hold.

    Paths are those the results table holds (relative ones are tried inside the folder); the labels are
    the scored sources: :func:`auvcore.results.labels_in_use` says which correction replaces them.

    Raises:
        InputError: naming the table, when it cannot be read or lacks case_id and image.
    """
    from .results import read_case_record

    try:
        with folder.results_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        raise InputError(folder.results_csv, f"cannot be read: {error}") from None
    if rows and not {"case_id", "image"} <= set(rows[0]):
        raise InputError(folder.results_csv, "is not a results table (it needs case_id and image)")
    specs = []
    for row in rows:
        case_id, label = row["case_id"], (row.get("label") or "").strip()
        record_path = folder.case_json(case_id)
        names = {c.id: c.name for c in read_case_record(record_path).classes} if record_path.exists() else {}
        specs.append(CaseSpec(case_id, folder.recorded_path(row["image"]), folder.recorded_path(label) if label else None, names))
    return _check_unique(specs, folder.results_csv)
