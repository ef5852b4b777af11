"""A class's S and scorer values over the cases of a results folder: the reference the explain page places a case in.

Example:
    >>> values = class_values("results", "liver")  # doctest: +SKIP
    >>> sorted(values)  # doctest: +SKIP
    ['S', 'agreement', 'consistency']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..results import ResultsFolder, read_case_record
from ..scorers.registry import PAPER_SCORER
from .view import CASE_LEVEL


def cohort_source(results: str | Path, class_name: str, values: dict[str, np.ndarray]) -> str:
    """The line the explain page writes above the cohort plot: which cases, and how many hold the class.

    Example:
        >>> cohort_source("out/results", "liver", {"S": np.array([0.1, 0.2, 0.3])})
        'The reference cohort: the scored cases of the results folder out/results, of which 3 hold liver (each a point below).'
    """
    held = len(values.get("S", ()))
    return (f"The reference cohort: the scored cases of the results folder {results}, of which {held} hold{'s' if held == 1 else ''} "
            f"{class_name} (each a point below).")


def class_values(results: str | Path, class_name: str) -> dict[str, np.ndarray]:
    """Score name ("S" first, then each scorer) -> the class's defined values over the folder's scored cases."""
    folder = ResultsFolder(Path(results))
    if not folder.cases_dir.is_dir():
        raise InputError(results, f"is not a results folder of `auv score` (no {folder.cases_dir.name}/ in it)")
    collected: dict[str, list[float]] = {"S": []}
    for path in sorted(folder.cases_dir.glob("*.json")):
        record = read_case_record(path)
        if not record.ok:
            continue
        for scorer in [PAPER_SCORER, *record.scores]:
            value = record.class_values(scorer).get(class_name)
            if value is not None and scorer not in CASE_LEVEL:
                collected.setdefault("S" if scorer == PAPER_SCORER else scorer, []).append(value)
    return {name: np.asarray(values) for name, values in collected.items() if values}
