"""A class's S and scorer values over the cases of a results folder: the reference the explain page places a case in.

Example:
    >>> values = class_values("results", "liver")  # doctest: +SKIP
    >>> sorted(values)  # doctest: +SKIP
    ['S', 'agreement', 'consistency']
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..cohort import CASES_DIR
from ..errors import InputError
from .view import CASE_LEVEL


def class_values(results: str | Path, class_name: str) -> dict[str, np.ndarray]:
    """Score name ("S" first, then each scorer) -> the class's finite values over the folder's scored cases."""
    folder = Path(results) / CASES_DIR
    if not folder.is_dir():
        raise InputError(results, f"is not a results folder of `auv score` (no {CASES_DIR}/ in it)")
    collected: dict[str, list[float]] = {"S": []}
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(path, f"cannot be read as a case record: {error}") from None
        if record.get("status") != "ok":
            continue
        for entry in record.get("classes", []):
            if entry.get("name") == class_name and entry.get("S") is not None:
                collected["S"].append(float(entry["S"]))
        for name, values in record.get("scores", {}).items():
            value = values.get("classes", {}).get(class_name)
            if name not in CASE_LEVEL and value is not None and math.isfinite(value):
                collected.setdefault(name, []).append(float(value))
    return {name: np.asarray(values) for name, values in collected.items() if values}
