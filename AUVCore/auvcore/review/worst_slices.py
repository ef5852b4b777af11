"""Where to look first: a structure's worst slices by a per-slice scorer, as RAS points.

``auv score --scorers ...`` writes per-slice values for the scorers that have
them (``agreement``, ``fisher``, ``boundary_gradient``, ``contrast``,
``homogeneity``, ``consistency``), the LPS centre of every slice and of each
structure's voxels on each slice; this turns them into points a slice view can
jump to (``slicer.vtkMRMLSliceNode.JumpAllSlices``): the structure's centre on
the slice where the record has it, so every view cuts through the structure,
else the slice's centre. :func:`where_to_look` picks the slice a review shows
first (the Slicer module and ``auv review`` alike).

Example:
    >>> from auvcore.results import CaseRecord
    >>> record = CaseRecord.from_dict({"case_id": "c", "classes": [],
    ...     "scores": {"agreement": {"classes": {"liver": 0.7}, "slices": {"liver": [0.1, None, 0.7, 0.3]}}},
    ...     "slice_centres_lps": [[1.0, 2.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0, 6.0], [1.0, 2.0, 9.0]]})
    >>> [(flag.index, flag.value, flag.ras) for flag in worst_slices(record, "liver", "agreement", count=2)]
    [(2, 0.7, (-1.0, -2.0, 6.0)), (3, 0.3, (-1.0, -2.0, 9.0))]
    >>> where_to_look(record, "liver", "auv").describe()
    'worst agreement slice (slice 2, value 0.7)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..results import CaseRecord

#: The per-slice scorers a structure's worst slice is taken from, in order of preference
#: (when the score a review is sorted by has no per-slice values).
PER_SLICE_SCORERS = ("agreement", "consistency", "boundary_gradient", "fisher", "contrast", "homogeneity",
                     "boundary_logits", "boundary_distance")


@dataclass(frozen=True)
class SliceFlag:
    """One slice of a structure: its index along the scored volume's slice axis, the value and where to look in RAS (mm)."""

    index: int
    value: float
    ras: tuple[float, float, float]
    #: The per-slice scorer whose value it is.
    scorer: str = ""

    def describe(self) -> str:
        return f"worst {self.scorer} slice (slice {self.index}, value {self.value:.3g})"


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
    flags = []
    for index, value in scored[:count]:
        lps = record.structure_centre(class_name, index) or centres[index]
        flags.append(SliceFlag(index, value, (-lps[0], -lps[1], lps[2]), scorer))
    return flags


def where_to_look(record: CaseRecord, structure: str, score: str) -> SliceFlag | None:
    """The structure's worst slice by ``score`` (or by the first of :data:`PER_SLICE_SCORERS` the case holds);
    None when the case has no per-slice values for it (a face then shows the structure's centre)."""
    for scorer in dict.fromkeys((score, *PER_SLICE_SCORERS)):
        try:
            flags = worst_slices(record, structure, scorer, count=1)
        except InputError:
            continue
        if flags:
            return flags[0]
    return None
