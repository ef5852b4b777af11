"""The results folder: the contract between ``auv score``, curation, the report, the audit and Slicer.

Torch-free (and pandas only when a table is made or read): everything that
reads or writes a results folder goes through this package.

* :mod:`.layout`: every file name, case paths, safe ids;
* :mod:`.case_record`: the case file (``cases/<case>.json``);
* :mod:`.table`: the results table (``results.csv`` / ``results.parquet``);
* :mod:`.reference`: the cohort's saved scales (``reference.json``);
* :mod:`.progress`: the ``PROGRESS`` lines of scoring and training;
* :mod:`.review`: reviewers' verdicts on structures (``review.json``);
* :mod:`.corrections`: corrected label maps (``corrections/<case>``) and which label a command uses.
* :mod:`.structures`: the structures table (``structures.csv``);
* :mod:`.writer_lock`: one writer at a time per folder, and who holds it.
"""

from .case_record import SCHEMA_VERSION, CaseRecord, ClassRecord, ScorerValues, json_number, read_case_record, write_case_record
from .corrections import (
    Correction,
    LabelChoice,
    LabelsInUse,
    StructureChange,
    label_for,
    labels_in_use,
    load_corrections,
    save_correction,
)
from .layout import (
    CASES_DIR,
    CORRECTIONS_DIR,
    EXCLUSIONS_JSON,
    REFERENCE_JSON,
    RESULTS_CSV,
    RESULTS_PARQUET,
    RETAINED_MANIFEST_CSV,
    REVIEW_JSON,
    SPLITS_JSON,
    STRUCTURES_CSV,
    ResultsFolder,
    safe_file_name,
)
from .progress import CaseProgress, EpochProgress, Progress, format_case_progress, format_epoch_progress, parse_progress_line
from .reference import SavedReference, load_reference, save_reference
from .review import ALL_VERDICTS, FIXED, VERDICTS, Review, Verdict, clear_verdict, load_review, record_verdict
from .structures import read_structures, structures_table, write_structures
from .table import class_matrix, read_results, results_table, write_results
from .writer_lock import FolderBusyError, Holder, held_by, writer_lock

__all__ = [
    "ALL_VERDICTS",
    "CASES_DIR",
    "CORRECTIONS_DIR",
    "EXCLUSIONS_JSON",
    "FIXED",
    "REFERENCE_JSON",
    "RESULTS_CSV",
    "RESULTS_PARQUET",
    "RETAINED_MANIFEST_CSV",
    "REVIEW_JSON",
    "SCHEMA_VERSION",
    "SPLITS_JSON",
    "STRUCTURES_CSV",
    "VERDICTS",
    "CaseProgress",
    "CaseRecord",
    "ClassRecord",
    "Correction",
    "EpochProgress",
    "LabelChoice",
    "LabelsInUse",
    "FolderBusyError",
    "Holder",
    "Progress",
    "ResultsFolder",
    "Review",
    "SavedReference",
    "ScorerValues",
    "StructureChange",
    "Verdict",
    "class_matrix",
    "clear_verdict",
    "format_case_progress",
    "format_epoch_progress",
    "held_by",
    "json_number",
    "label_for",
    "labels_in_use",
    "load_corrections",
    "load_reference",
    "load_review",
    "parse_progress_line",
    "read_case_record",
    "read_results",
    "read_structures",
    "record_verdict",
    "results_table",
    "safe_file_name",
    "save_correction",
    "save_reference",
    "structures_table",
    "write_case_record",
    "write_results",
    "write_structures",
    "writer_lock",
]
