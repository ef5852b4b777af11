"""What the exports need to know of the retained cases beyond the results table, read from their case records.

* which cases share an image (by content hash): two labelings of one scan must
  stay in one fold of ``splits_final.json``, or the network is validated on a
  scan it was trained on;
* which label table each case was scored with (its ``label_names`` file, kept
  in the retained manifest) and whether the tables of one export agree: a
  value that means one class in some cases and another in others (CT 10 = lung
  upper lobe left, MR 10 = lung left) cannot be trained on as one.

Example:
    >>> tables = {"ct_a": {10: "lung_upper_lobe_left"}, "ct_b": {10: "lung_upper_lobe_left"}, "mr": {10: "lung_left"}}
    >>> label_conflicts(tables)
    ['10 is lung_upper_lobe_left in ct_a, ct_b and lung_left in mr']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..datasets import read_label_names
from ..errors import InputError
from ..files import file_sha256
from ..results import CaseRecord, ResultsFolder, read_case_record

#: How many differing label values a warning names (the count says how many there are).
NAMED_CONFLICTS = 3


@dataclass(frozen=True)
class RetainedFacts:
    """The retained cases' label-names files, shared images and label tables.

    Attributes:
        label_names: case id -> the label-names file it was scored with (None where its record does not say).
        image_keys: case id -> its image's content hash (the file's path where it can be neither read nor hashed).
        tables: case id -> its label table (label value -> class name): the label-names file's, else the classes
            its record holds.
    """

    label_names: dict[str, str | None]
    image_keys: dict[str, str]
    tables: dict[str, dict[int, str]]

    def shared_images(self) -> list[list[str]]:
        """The groups of two or more cases that share one image, each sorted."""
        groups: dict[str, list[str]] = {}
        for case_id, key in self.image_keys.items():
            groups.setdefault(key, []).append(case_id)
        return sorted(sorted(cases) for cases in groups.values() if len(cases) > 1)

    def conflicts(self) -> list[str]:
        """:func:`label_conflicts` of the retained cases' tables."""
        return label_conflicts(self.tables)


def label_conflicts(tables: Mapping[str, Mapping[int, str]]) -> list[str]:
    """Each label value that names different classes in different cases, as a line (empty when the tables agree)."""
    names: dict[int, dict[str, list[str]]] = {}
    for case_id, table in tables.items():
        for value, name in table.items():
            names.setdefault(int(value), {}).setdefault(name, []).append(case_id)
    return [f"{value} is " + " and ".join(f"{name} in {', '.join(cases)}" for name, cases in by_name.items())
            for value, by_name in sorted(names.items()) if len(by_name) > 1]


def retained_facts(results_dir: Path, case_ids: Sequence[str]) -> RetainedFacts:
    """The facts of ``case_ids`` from the case records of ``results_dir`` (a case without a readable record keeps
    what the results table says: its image path as its key, no table)."""
    folder = ResultsFolder(results_dir)
    label_names: dict[str, str | None] = {}
    image_keys: dict[str, str] = {}
    tables: dict[str, dict[int, str]] = {}
    hashed: dict[Path, str] = {}
    for case_id in case_ids:
        try:
            record = read_case_record(folder.case_json(case_id))
        except InputError:
            continue
        label_names[case_id] = record.label_names
        image_keys[case_id] = record.image_sha256 or _hash(folder.recorded_path(record.image), hashed)
        tables[case_id] = _table(record, folder)
    return RetainedFacts(label_names, image_keys, tables)


def _hash(path: Path, hashed: dict[Path, str]) -> str:
    """The file's content hash (a record written before it kept one), once per file; its path when unreadable."""
    if path not in hashed:
        try:
            hashed[path] = file_sha256(path)
        except OSError:
            hashed[path] = str(path)
    return hashed[path]


def _table(record: CaseRecord, folder: ResultsFolder) -> dict[int, str]:
    if record.label_names:
        path = folder.recorded_path(record.label_names)
        if path.is_file():
            try:
                return read_label_names(path)
            except InputError:
                pass  # moved or changed since: the classes the record holds still say what its values meant
    return {c.id: c.name for c in record.classes}
