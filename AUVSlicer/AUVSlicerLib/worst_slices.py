"""Where to look first: a structure's worst slices by a per-slice scorer, as RAS points.

``auv score --scorers ...`` writes per-slice values for the scorers that have
them (``agreement``, ``fisher``, ``boundary_gradient``, ``contrast``,
``homogeneity``, ``consistency``) and the LPS centre of every slice; this
turns them into points a slice view can jump to
(``slicer.modules.markups.logic().JumpSlicesToLocation(*ras, True)``).

Example:
    >>> from auvcore.results import CaseRecord
    >>> record = CaseRecord.from_dict({"case_id": "c", "classes": [],
    ...     "scores": {"agreement": {"classes": {"liver": 0.7}, "slices": {"liver": [0.1, None, 0.7, 0.3]}}},
    ...     "slice_centres_lps": [[1.0, 2.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0, 6.0], [1.0, 2.0, 9.0]]})
    >>> [(flag.index, flag.value, flag.ras) for flag in worst_slices(record, "liver", "agreement", count=2)]
    [(2, 0.7, (-1.0, -2.0, 6.0)), (3, 0.3, (-1.0, -2.0, 9.0))]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from auvcore.errors import InputError
from auvcore.results import CaseRecord


@dataclass(frozen=True)
class SliceFlag:
    """One slice of a structure: its index along the scored volume's slice axis, the value and its centre in RAS (mm)."""

    index: int
    value: float
    ras: tuple[float, float, float]


def worst_slices(record: CaseRecord, class_name: str, scorer: str = "agreement", count: int = 3) -> list[SliceFlag]:
    """The ``count`` slices of ``class_name`` with the highest (most suspect) values of ``scorer``.

    Raises:
        InputError: when the case holds no per-slice values of ``scorer`` for the class
            (scored without ``--scorers``, or the scorer has no per-slice values).
    """
    source = record.case_id
    entry = record.scores.get(scorer)
    values = (entry.slices or {}).get(class_name) if entry is not None else None
    centres = record.slice_centres_lps
    if values is None or centres is None:
        raise InputError(source, f"has no per-slice {scorer} values for {class_name!r}; score it with --scorers {scorer}")
    if len(centres) != len(values):
        raise InputError(source, f"has {len(values)} per-slice values but {len(centres)} slice centres")
    scored = [(index, float(v)) for index, v in enumerate(values) if v is not None and not math.isnan(float(v))]
    scored.sort(key=lambda item: item[1], reverse=True)
    return [SliceFlag(index, value, (-centres[index][0], -centres[index][1], centres[index][2])) for index, value in scored[:count]]
