"""What the review queue's table shows: one row per (case, structure), its colour by verdict, and a summary line.

Both faces show these rows: the Slicer module copies them into a
``QTableWidget`` (``AUVSlicerLib.cohort_table.fill_table_widget``), ``auv
review`` into its page's queue list.

Example:
    >>> from auvcore.review.structure_scores import StructureScore
    >>> class Queue:  # what the table reads of a ReviewQueue
    ...     score = "auv"
    ...     entries = [StructureScore("ct_7", "liver", 0.97, 3.2), StructureScore("mr", "liver", 0.9, float("nan"), "none",
    ...                                                                           "1 MR case holds it")]
    ...     def verdict_of(self, entry): return None
    ...     def progress(self): return "reviewed 0 of 2"
    >>> content = review_table_content(Queue())
    >>> content.rows[0], content.colors
    ([1, 'ct_7', 'liver', 0.97, 3.2, 'its modality', ''], ['', 'gray'])
    >>> content.summary
    'reviewed 0 of 2; the last 1 are not judged against their own modality (too few cases of it)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TableContent:
    """Columns, rows of cell values (None for a missing number), each row's colour ("" for none) and a summary."""

    columns: list[str]
    rows: list[list]
    colors: list[str]
    summary: str
    sort_column: str = "auv"
    descending: bool = True


#: Row colours of the review queue by verdict.
VERDICT_COLORS = {"correct": "darkgreen", "needs_fix": "firebrick", "unsure": "darkorange"}
#: Text colour of the queue's rows judged against too few cases of their class and modality (without a verdict).
UNJUDGED_COLOR = "gray"


def review_table_content(queue) -> TableContent:
    """The review queue: position, case, structure, the score's value and z, what it was judged against, the verdict.

    ``queue`` is a :class:`~auvcore.review.queue.ReviewQueue`. Structures not judged against their own modality come
    after the judged ones, in grey, with why.
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
