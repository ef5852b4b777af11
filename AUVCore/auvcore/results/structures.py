"""Structures as results: ``structures.csv``, one row per (case, class) of a scored cohort.

Each row holds the case's modality, the class's slice and voxel counts, every scorer's class value
and its robust z within that class across the cohort (higher = more unusual
for this structure in this cohort, for every scorer: ``auv`` uses -log S),
and the structure's worst slice (index along axis 0 of the LPS volume and its
LPS centre), so a reviewer can be sent to it. With ``label_check``,
``label_check_parts`` names the parts it was made of for the structure. The Slicer review queue and
``auv report`` read it; ``auv filter --by`` filters on its columns' case-level
counterparts.

Example:
    >>> from auvcore.results.case_record import CaseRecord, ClassRecord, ScorerValues
    >>> cases = [CaseRecord(f"c{i}", "i.nii.gz", "l.nii.gz", S=s, classes=(ClassRecord(1, "liver", s, 3, voxels=900),),
    ...                     scores={"agreement": ScorerValues({"liver": a}, {"liver": [a / 2, a, None]})},
    ...                     slice_centres_lps=[[0.0, 0.0, z] for z in (0.0, 3.0, 6.0)])
    ...          for i, (s, a) in enumerate([(0.5, 0.1), (0.4, 0.2), (0.45, 0.9)])]
    >>> table = structures_table(cases, ("auv", "agreement"))
    >>> table[["case_id", "class", "agreement_z", "worst_slice", "worst_lps_s"]].round(2).values.tolist()
    [['c0', 'liver', -0.67, 1, 3.0], ['c1', 'liver', 0.0, 1, 3.0], ['c2', 'liver', 4.72, 1, 3.0]]
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..files import atomic_write_bytes
from ..scales import ScoreScale
from ..scorers.registry import LABEL_CHECK, LABEL_CHECK_PARTS, SCORER_INFO, scale_options
from .case_record import CaseRecord
from .layout import ResultsFolder
from .table import case_modalities, class_matrix

if TYPE_CHECKING:
    import pandas as pd

_LPS = ("worst_lps_r", "worst_lps_a", "worst_lps_s")
#: The column that names the parts ``label_check`` was made of for each structure (its look-alike parts only
#: where the structure has look-alikes; the case-intrinsic ones everywhere).
LABEL_CHECK_PARTS_COLUMN = "label_check_parts"


def structure_scorers(scorers: Sequence[str]) -> list[str]:
    """The scorers that give a value per structure (not one per case, like ``image_auv``)."""
    return [name for name in scorers if name in SCORER_INFO and not SCORER_INFO[name].per_case]


def _worst_slice(record: CaseRecord, class_name: str, scorers: Sequence[str]) -> tuple[str, int] | None:
    """(scorer, slice index) of the highest per-slice value of the first per-slice scorer that has one."""
    for name in scorers:
        values = record.scores.get(name)
        row = None if values is None or values.slices is None else values.slices.get(class_name)
        finite = [(v, index) for index, v in enumerate(row or ()) if v is not None and math.isfinite(v)]
        if finite:
            return name, max(finite)[1]
    return None


def _label_check_parts(records: Sequence[CaseRecord], modalities: Sequence[str | None]) -> "pd.DataFrame":
    """Which parts ``label_check`` used for each structure (:func:`auvcore.scorers.cohort_scores.label_check_scores`)."""
    from ..scorers.cohort_scores import label_check_scores

    return label_check_scores({part: class_matrix(records, part) for part in LABEL_CHECK_PARTS}, modalities).parts


def structures_table(records: Sequence[CaseRecord], scorers: Sequence[str], scales: dict[str, ScoreScale] | None = None) -> "pd.DataFrame":
    """One row per (case, class) of the scored cases.

    Args:
        scorers: the scorers computed (their per-structure ones become columns).
        scales: a saved cohort's scales to take each class's median and spread
            from (placing cases on a reference); by default they are fitted on ``records``.
    """
    import pandas as pd

    names = structure_scorers(scorers)
    scored = [r for r in records if r.ok]
    z = {}
    modalities = case_modalities(scored)
    for name in names:
        matrix = class_matrix(scored, name)
        scale = (scales or {}).get(name) if scales is not None else ScoreScale.fit(matrix, "mean", **scale_options(name), modalities=modalities)
        z[name] = scale.class_z(matrix, modalities) if scale is not None and scale.class_stats else None
    per_slice = [n for n in names if SCORER_INFO[n].per_slice]
    parts = _label_check_parts(scored, modalities) if LABEL_CHECK in names and scales is None else None
    rows = []
    for record in scored:
        for item in record.classes:
            row = {"case_id": record.case_id, "class_id": item.id, "class": item.name, "modality": record.modality,
                   "slices": item.rows, "voxels": item.voxels}
            for name in names:
                row[name] = record.class_values(name).get(item.name, math.nan)
                frame = z[name]
                row[f"{name}_z"] = frame.at[record.case_id, item.name] if frame is not None and item.name in frame.columns else math.nan
            if parts is not None:
                row[LABEL_CHECK_PARTS_COLUMN] = parts.at[record.case_id, item.name] if item.name in parts.columns else ""
            worst = _worst_slice(record, item.name, per_slice)
            row["worst_slice_scorer"], row["worst_slice"] = worst if worst else (None, None)
            centre = record.slice_centres_lps[worst[1]] if worst and record.slice_centres_lps else (None, None, None)
            row.update(dict(zip(_LPS, centre)))
            rows.append(row)
    columns = ["case_id", "class_id", "class", "modality", "slices", "voxels", *[c for n in names for c in (n, f"{n}_z")],
               *([LABEL_CHECK_PARTS_COLUMN] if parts is not None else []), "worst_slice_scorer", "worst_slice", *_LPS]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"voxels": "Int64", "worst_slice": "Int64"})


def write_structures(table: "pd.DataFrame", folder: str | Path) -> None:
    """Write ``structures.csv`` atomically."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    atomic_write_bytes(ResultsFolder(Path(folder)).structures_csv, buffer.getvalue().encode("utf-8"))


def read_structures(folder: str | Path) -> "pd.DataFrame":
    """Read ``structures.csv`` of a results folder (or the file itself); InputError naming it when missing."""
    import pandas as pd

    from ..errors import InputError

    path = Path(folder)
    if path.is_dir():
        path = ResultsFolder(path).structures_csv
    if not path.is_file():
        raise InputError(path, "does not exist (`auv score` writes it beside results.csv; score the cohort again with this auvcore, the cache makes it quick)")
    return pd.read_csv(path, dtype={"case_id": str, "class": str})
