"""Every file name of a results folder, and where a case's files lie in it.

A results folder is what ``auv score`` writes and every other command, the
report, the audit and the Slicer module read::

    OUT/results.csv, OUT/results.parquet   one row per case
    OUT/cases/<case>.json                  one case record (the per-case cache too)
    OUT/cases/<case>.prototypes.npz        the class prototypes of the cohort scorers
    OUT/cases/<case>.features.npz          the feature cache of auv explain and the module (auvcore.explain.cache)
    OUT/reference.json                     the cohort's scales, to place new cases
    OUT/exclusions.json                    curation decisions
    OUT/review.json                        structure verdicts of a review, and the corrections' records
    OUT/corrections/<case>.nii.gz          a reviewer's corrected label map (the source's extension where it has one)
    OUT/.auv-writer.lock, .auv-writer.json the writer lock and who holds it (auvcore.results.writer_lock)

Example:
    >>> folder = ResultsFolder(Path("out"))
    >>> folder.case_json("liver 7").as_posix(), folder.prototypes("liver 7").name
    ('out/cases/liver_7.json', 'liver_7.prototypes.npz')
"""

from __future__ import annotations

import re
import contextlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
CASES_DIR = "cases"
REFERENCE_JSON = "reference.json"
EXCLUSIONS_JSON = "exclusions.json"
REVIEW_JSON = "review.json"
STRUCTURES_CSV = "structures.csv"
RETAINED_MANIFEST_CSV = "retained_manifest.csv"
SPLITS_JSON = "splits_final.json"
CORRECTIONS_DIR = "corrections"
PROTOTYPES_SUFFIX = ".prototypes.npz"
FEATURES_SUFFIX = ".features.npz"


def safe_file_name(case_id: str) -> str:
    """A case id as a file name: anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``.

    Example:
        >>> safe_file_name("patient 3/ct")
        'patient_3_ct'
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", case_id)


@dataclass(frozen=True)
class ResultsFolder:
    """The paths of one results folder (nothing is read or created here)."""

    root: Path

    @classmethod
    def find(cls, path: str | Path) -> "ResultsFolder":
        """The results folder given as itself or as its ``results.csv`` (which a merge has yet to write).

        Raises:
            InputError: naming the path, when it is neither.
        """
        path = Path(path)
        if path.is_dir():
            return cls(path)
        if path.name == RESULTS_CSV and path.parent.is_dir() and not path.is_dir():
            return cls(path.parent)
        if path.exists():
            raise InputError(path, f"is not a results folder nor its {RESULTS_CSV} (give the folder `auv score --out` wrote)")
        raise InputError(path, "does not exist (run `auv score` first, or give its output folder)")

    @staticmethod
    def holds_results(path: str | Path) -> bool:
        """Whether ``path`` is a folder ``auv score`` wrote (a results table and a cases folder)."""
        path = Path(path)
        return (path / RESULTS_CSV).is_file() and (path / CASES_DIR).is_dir()

    @property
    def results_csv(self) -> Path:
        return self.root / RESULTS_CSV

    @property
    def results_parquet(self) -> Path:
        return self.root / RESULTS_PARQUET

    @property
    def cases_dir(self) -> Path:
        return self.root / CASES_DIR

    @property
    def reference(self) -> Path:
        return self.root / REFERENCE_JSON

    @property
    def exclusions(self) -> Path:
        return self.root / EXCLUSIONS_JSON

    @property
    def review(self) -> Path:
        return self.root / REVIEW_JSON

    @property
    def structures_csv(self) -> Path:
        return self.root / STRUCTURES_CSV

    @property
    def corrections_dir(self) -> Path:
        return self.root / CORRECTIONS_DIR

    def correction(self, case_id: str, extension: str = ".nii.gz") -> Path:
        """Where the current correction of ``case_id`` lies (:mod:`.corrections` picks ``extension``)."""
        return self.corrections_dir / f"{safe_file_name(case_id)}{extension}"

    def case_json(self, case_id: str) -> Path:
        return self.cases_dir / f"{safe_file_name(case_id)}.json"

    def prototypes(self, case_id: str) -> Path:
        return self.cases_dir / f"{safe_file_name(case_id)}{PROTOTYPES_SUFFIX}"

    def features(self, case_id: str) -> Path:
        return self.cases_dir / f"{safe_file_name(case_id)}{FEATURES_SUFFIX}"

    def writer_lock(self, command: str | None = None, timeout: float | None = None,
                    shard: tuple[int, int] | None = None) -> contextlib.AbstractContextManager[None]:
        """The folder's writer lock (:func:`auvcore.results.writer_lock.writer_lock`): one writer at a time."""
        from .writer_lock import writer_lock

        return writer_lock(self.root, command, timeout, shard)

    def recorded_path(self, path: str) -> Path:
        """A file path as a case record holds it; a relative one that does not exist from here is tried inside the folder."""
        candidate = Path(path)
        if candidate.is_absolute() or candidate.exists():
            return candidate
        inside = self.root / candidate
        return inside if inside.exists() else candidate
