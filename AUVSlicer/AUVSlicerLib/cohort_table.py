"""What the cohort browser's and the review queue's tables show, and filling a ``QTableWidget`` with it.

:func:`cohort_table_content` and :func:`review_table_content` decide the rows,
cell values, colours and the summary line (tested without Qt);
:func:`fill_table_widget` only copies that into the widget, keeping the user's
sort column and selection.

Example:
    >>> content = cohort_table_content(model, keep=0.95)           # doctest: +SKIP
    >>> fill_table_widget(ui.cohortTableWidget, content, "ct_7")   # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Text colours of the rows: excluded cases, and cases above the keep quantile.
EXCLUDED_COLOR = "gray"
ABOVE_THRESHOLD_COLOR = "darkorange"


@dataclass(frozen=True)
class TableContent:
    """Columns, rows of cell values (None for a missing number), each row's colour ("" for none) and a summary."""

    columns: list[str]
    rows: list[list]
    colors: list[str]
    summary: str
    sort_column: str = "auv"
    descending: bool = True


def cohort_table_content(cohort, keep: float) -> TableContent:
    """The browser's table: every case with its scores and decision; cases above the ``keep`` quantile in orange."""
    rows = cohort.table()
    threshold = cohort.quantile_threshold(keep)
    cells, colors = [], []
    for row in rows.itertuples(index=False):
        cells.append([None if isinstance(v, float) and math.isnan(v) else round(v, 4) if isinstance(v, float) else str(v)
                      for v in row])
        above = threshold is not None and not math.isnan(row.auv) and row.auv > threshold
        colors.append(EXCLUDED_COLOR if row.excluded else ABOVE_THRESHOLD_COLOR if above else "")
    unsaved = " (unsaved changes)" if cohort.dirty else ""
    above_text = "" if threshold is None else (
        f"; keeping {keep:.2f} puts the AUV threshold at {threshold:.4f} (cases above it in orange)")
    summary = (f"{len(rows)} cases, {len(cohort.retained())} retained, {int(rows['excluded'].sum())} excluded"
               f"{unsaved}{above_text}")
    return TableContent(list(rows.columns), cells, colors, summary)


#: Row colours of the review queue by verdict.
VERDICT_COLORS = {"correct": "darkgreen", "needs_fix": "firebrick", "unsure": "darkorange"}


#: Text colour of the queue's rows judged against too few cases of their class and modality (without a verdict).
UNJUDGED_COLOR = "gray"


def review_table_content(queue) -> TableContent:
    """The review queue: position, case, structure, the score's value and z, what it was judged against, the verdict.

    Structures not judged against their own modality come after the judged ones, in grey, with why.
    """
    rows, colors = [], []
    for position, entry in enumerate(queue.entries, start=1):
        verdict = queue.verdict_of(entry)
        rows.append([position, entry.case_id, entry.structure,
                     None if math.isnan(entry.value) else round(entry.value, 4),
                     None if math.isnan(entry.z) else round(entry.z, 2) if math.isfinite(entry.z) else str(entry.z),
                     "its modality" if entry.judged else entry.why,
                     verdict.describe() if verdict else ""])
        colors.append(VERDICT_COLORS.get(verdict.verdict, "") if verdict else "" if entry.judged else UNJUDGED_COLOR)
    columns = ["#", "case_id", "structure", queue.score, f"z ({queue.score})", "judged against", "verdict"]
    apart = sum(not entry.judged for entry in queue.entries)
    summary = queue.progress() + (f"; the last {apart} are not judged against their own modality (too few cases of it)" if apart else "")
    return TableContent(columns, rows, colors, summary, sort_column="#", descending=False)


def fill_table_widget(table, content: TableContent | None, selected: str | None = None) -> None:
    """Show ``content`` in a ``QTableWidget`` (empty for None), keeping its sort order and re-selecting ``selected``."""
    import qt

    header = table.horizontalHeader()
    sort_column = header.sortIndicatorSection() if table.columnCount else -1
    default_order = qt.Qt.DescendingOrder if content is None or content.descending else qt.Qt.AscendingOrder
    sort_order = header.sortIndicatorOrder() if table.columnCount else default_order
    table.blockSignals(True)
    table.setSortingEnabled(False)
    table.clear()
    columns = content.columns if content else []
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setRowCount(len(content.rows) if content else 0)
    for row_index, (row, color) in enumerate(zip(content.rows, content.colors) if content else ()):
        for column_index, value in enumerate(row):
            item = qt.QTableWidgetItem()
            item.setData(qt.Qt.DisplayRole, value)
            if color:
                item.setForeground(qt.QBrush(qt.QColor(color)))
            table.setItem(row_index, column_index, item)
    if content:
        table.setSortingEnabled(True)
        default = columns.index(content.sort_column) if content.sort_column in columns else 0
        table.sortItems(sort_column if 0 <= sort_column < len(columns) else default, sort_order)
        for row_index in range(table.rowCount):
            if table.item(row_index, 0).text() == selected:
                table.selectRow(row_index)
    table.blockSignals(False)
