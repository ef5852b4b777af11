"""What a review shows, for both of its faces: the Slicer module's review panel and ``auv review`` in a browser.

Torch-free, Qt-free and Slicer-free (the results folder through
:mod:`auvcore.results`), so both faces decide the same way:

* :mod:`.case_scores`: a case's scores as a reviewer sees them (NaN where a value is missing);
* :mod:`.structure_scores`: each structure's score and its robust z within that structure across the cohort;
* :mod:`.colour_plan`: what each structure of a case is coloured by, on which scale, with which legend;
* :mod:`.queue`: every (case, structure) most suspect first, a position in it, and the verdicts (``review.json``);
* :mod:`.queue_table`: the queue's rows, colours and summary line as a table shows them;
* :mod:`.worst_slices`: where to look: a structure's worst slices as RAS points.

Example:
    >>> queue = ReviewQueue.of_folder("results", "agreement")                      # doctest: +SKIP
    >>> entry = queue.current                                                      # doctest: +SKIP
    >>> case = queue.cohort.case(entry.case_id)                                    # doctest: +SKIP
    >>> colour_plan(case, "agreement", queue.cohort).colour(entry.structure)       # doctest: +SKIP
"""

from .case_scores import CaseResult, ClassScore, load_case_result
from .colour_plan import ColourPlan, colour_plan
from .queue import ReviewQueue, folder_cases
from .queue_table import TableContent, review_table_content
from .structure_scores import MIN_REFERENCE_CASES, CohortScores, StructureScore
from .worst_slices import PER_SLICE_SCORERS, SliceFlag, where_to_look, worst_slices

__all__ = [
    "MIN_REFERENCE_CASES",
    "PER_SLICE_SCORERS",
    "CaseResult",
    "ClassScore",
    "CohortScores",
    "ColourPlan",
    "ReviewQueue",
    "SliceFlag",
    "StructureScore",
    "TableContent",
    "colour_plan",
    "folder_cases",
    "load_case_result",
    "review_table_content",
    "where_to_look",
    "worst_slices",
]
