"""The results table: one row per case, written as ``results.csv`` and ``results.parquet``.

Columns: ``case_id, auv, S, S_<class>..., <scorer>..., status, error, backbone,
mode, image, label``; each extra scorer's column is its case score in [0, 1]
over the cohort (higher = more suspect). pandas is imported when a table is
made or read, not with this module, so the torch-free core imports fast.

Example:
    >>> from auvcore.results.case_record import CaseRecord, ClassRecord
    >>> table = results_table([CaseRecord("c1", "c1.nii.gz", None, auv=0.0, S=0.5,
    ...                                   classes=(ClassRecord(1, "liver", 0.5, 4),))])
    >>> list(table.columns[:4]), float(table["S_liver"][0])
    (['case_id', 'auv', 'S', 'S_liver'], 0.5)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import InputError
from ..files import atomic_write_bytes
from .case_record import CaseRecord
from .layout import RESULTS_CSV, ResultsFolder

if TYPE_CHECKING:
    import pandas as pd

_TAIL = ("status", "error", "backbone", "mode", "image", "label")


def results_table(records: Sequence[CaseRecord]) -> "pd.DataFrame":
    """One row per record, class and scorer columns in the order they first appear."""
    import pandas as pd

    rows = []
    class_columns: list[str] = []
    scorer_columns: list[str] = []
    for record in records:
        row = {"case_id": record.case_id, "auv": record.auv, "S": record.S}
        for item in record.classes:
            column = f"S_{item.name}"
            if column not in class_columns:
                class_columns.append(column)
            row[column] = item.S
        for name, value in record.case_scores.items():
            if name not in scorer_columns:
                scorer_columns.append(name)
            row[name] = value
        row.update({key: getattr(record, key) for key in _TAIL})
        rows.append(row)
    columns = ["case_id", "auv", "S", *class_columns, *scorer_columns, *_TAIL]
    table = pd.DataFrame(rows, columns=columns)
    numeric = ["auv", "S", *class_columns, *scorer_columns]
    table[numeric] = table[numeric].astype("float64")
    return table


def class_matrix(records: Sequence[CaseRecord], scorer: str) -> "pd.DataFrame":
    """One row per case (index: case id), one column per class: the scorer's class values (``auv``: S).

    Cases that failed, and classes a case does not hold, are NaN.
    """
    import pandas as pd

    rows = [record.class_values(scorer) if record.ok else {} for record in records]
    return pd.DataFrame(rows, index=[r.case_id for r in records], dtype="float64")


def case_modalities(records: Sequence[CaseRecord]) -> list[str | None]:
    """Each case's modality, in the order of :func:`class_matrix`'s rows (classes are normalised within it)."""
    return [record.modality for record in records]


def write_results(table: "pd.DataFrame", folder: str | Path) -> None:
    """Write ``results.csv`` and ``results.parquet`` into ``folder``, each atomically."""
    results = ResultsFolder(Path(folder))
    atomic_write_bytes(results.results_csv, table.to_csv(index=False).encode("utf-8"))
    parquet = io.BytesIO()
    table.to_parquet(parquet, index=False)
    atomic_write_bytes(results.results_parquet, parquet.getvalue())


def require_columns(table: "pd.DataFrame", columns: Iterable[str]) -> None:
    """ValueError naming the columns ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks the column(s) {', '.join(missing)}")


def read_results(results: str | Path) -> "pd.DataFrame":
    """Read a results table: a results folder, its ``results.csv``, or another CSV of the same shape.

    Case ids are strings; the ``auv``, ``S`` and ``S_<class>`` columns numbers.

    Raises:
        InputError: naming the file, when it is missing, unreadable, lacks the
            case_id/auv columns or repeats a case id.
    """
    import pandas as pd

    path = Path(results)
    if path.is_dir():
        path = path / RESULTS_CSV
    if not path.is_file():
        raise InputError(path, "does not exist (run `auv score` first, or give its output folder)")
    try:
        table = pd.read_csv(path, dtype={"case_id": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(path, f"is not a readable results table: {error}") from None
    try:
        require_columns(table, ("case_id", "auv"))
    except ValueError as error:
        raise InputError(path, str(error)) from None
    for column in table.columns:
        if column in ("auv", "S") or column.startswith("S_"):
            table[column] = pd.to_numeric(table[column], errors="coerce")
    if table["case_id"].duplicated().any():
        raise InputError(path, f"repeats case ids: {sorted(set(table['case_id'][table['case_id'].duplicated()]))}")
    return table
