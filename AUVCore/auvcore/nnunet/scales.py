"""``auv_scales.json``: each exported case's per-class S, beside an exported dataset's ``dataset.json``.

The S are the results folder's (:mod:`auvcore.results`), keyed by the nnU-Net case identifier
and the class name of ``dataset.json``; a class a case does not hold, or whose S is undefined
(fewer than two slices), is ``null``. A training batch's class S is the mean over the batch's
cases of their S (undefined where no case of the batch has one): what
:class:`~auvcore.nnunet.trainers.nnUNetTrainerAUVWeighted` maps to class weights with DUO's
map (:func:`auvcore.duo.weights.weights_from_scales`).

Torch-free.

Example:
    >>> scales = CaseScales(("liver", "spleen"), {"a": {"liver": 0.2, "spleen": None}, "b": {"liver": 0.4}})
    >>> scales.batch_scales(["a", "b", "a"]).round(4).tolist()
    [0.2667, nan]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..files import write_json_atomic

SCALES_FILE = "auv_scales.json"
FORMAT = "auv-nnunet-scales"
VERSION = 1


@dataclass(frozen=True)
class CaseScales:
    """Per nnU-Net case identifier, S per class name (None where undefined); ``classes`` in label order."""

    classes: tuple[str, ...]
    cases: Mapping[str, Mapping[str, float | None]]

    def batch_scales(self, keys: Sequence[str]) -> np.ndarray:
        """The class S (K,) of a batch of cases: the mean over its cases, NaN where none has one.

        Raises:
            KeyError: naming a case the file does not hold (a dataset changed after its export).
        """
        missing = [key for key in keys if key not in self.cases]
        if missing:
            raise KeyError(f"{SCALES_FILE} holds no S for the case(s) {', '.join(sorted(set(missing)))}")
        table = np.array([[_number(self.cases[key].get(name)) for name in self.classes] for key in keys], dtype=np.float64)
        defined = np.isfinite(table)
        counts = defined.sum(axis=0)
        sums = np.where(defined, table, 0.0).sum(axis=0)
        return np.divide(sums, counts, out=np.full(len(self.classes), np.nan), where=counts > 0)

    def write(self, path: str | Path, source: Path, labels: str, case_ids: Mapping[str, str],
              excluded: Sequence[str]) -> None:
        """Write the file, with where the S come from (``case_ids``: nnU-Net identifier -> results-folder case id)."""
        write_json_atomic(path, {
            "format": FORMAT, "version": VERSION, "results": str(source),
            "what": "S(Z|c) per case and class, from the case records of the results folder (not rescored)",
            "labels": labels, "excluded": list(excluded), "classes": list(self.classes),
            "cases": {key: {"case_id": case_ids[key], "S": {name: _json(self.cases[key].get(name)) for name in self.classes}}
                      for key in self.cases},
        })

    @classmethod
    def read(cls, path: str | Path) -> CaseScales:
        """Read a file :meth:`write` wrote.

        Raises:
            InputError: naming the file, when it is missing, not JSON, or not a scales file.
        """
        path = Path(path)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(path, "does not exist; export the dataset with `auv nnunet export` (it writes the S beside "
                             "dataset.json)") from None
        except (OSError, ValueError) as error:
            raise InputError(path, f"cannot be read as JSON: {error}") from None
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise InputError(path, f"is not an {FORMAT} file of version {VERSION}")
        classes = tuple(str(c) for c in data["classes"])
        return cls(classes, {str(k): {str(n): _number(v) for n, v in case["S"].items()} for k, case in data["cases"].items()})


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _json(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
