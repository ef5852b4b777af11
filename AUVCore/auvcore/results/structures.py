"""Structures as results: ``structures.csv``, one row per (case, class) of a scored cohort.

Each row holds the case's modality, what the structure was judged against
(``judged_against``: ``modality`` where at least 3 cases of its class and
modality hold it, ``pooled`` where its z is against the cohort's cases of any
modality, ``none`` where too few cases of any modality hold it;
``modality_cases``: how many cases of its modality hold its class, itself
included; :class:`auvcore.scales.Lookalikes`), the class's slice and voxel
counts, every scorer's class value and its robust z within that class across
the cohort (higher = more unusual for this structure in this cohort, for every
scorer: ``auv`` uses -log S), and the structure's worst slice: the highest
per-slice value of the per-slice scorer under which the structure is most
unusual (``worst_slice_scorer``; index along axis 0 of the LPS volume) and the
LPS centre of the structure's voxels on that slice (``worst_lps_r/a/s``; for a
case recorded before those centres were, r and a are empty and s is the
slice's), so a reviewer can be sent to it. The Slicer review queue and ``auv
report`` read it; ``auv filter --by`` filters on its columns' case-level
counterparts. With ``label_check``, ``label_check_parts`` names the parts it
was made of for the structure. A ``structures.csv`` written before ``judged_against`` existed
reads as it was (:func:`read_structures`: every structure counts as judged).

Example:
    >>> from auvcore.results.case_record import CaseRecord, ClassRecord, ScorerValues
    >>> cases = [CaseRecord(f"c{i}", "i.nii.gz", "l.nii.gz", S=s, classes=(ClassRecord(1, "liver", s, 3, voxels=900),),
    ...                     scores={"agreement": ScorerValues({"liver": a}, {"liver": [a / 2, a, None]})},
    ...                     slice_centres_lps=[[0.0, 0.0, z] for z in (0.0, 3.0, 6.0)],
    ...                     structure_centres_lps={"liver": [[d, 10.0 + i, 20.0, 3.0 * d] for d in (0, 1)]})
    ...          for i, (s, a) in enumerate([(0.5, 0.1), (0.4, 0.2), (0.45, 0.9)])]
    >>> table = structures_table(cases, ("auv", "agreement"))
    >>> table[["case_id", "judged_against", "agreement_z", "worst_slice", "worst_lps_r", "worst_lps_s"]].round(2).values.tolist()
    [['c0', 'modality', -0.67, 1, 10.0, 3.0], ['c1', 'modality', 0.0, 1, 11.0, 3.0], ['c2', 'modality', 4.72, 1, 12.0, 3.0]]
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..files import atomic_write_bytes
from ..scales import JUDGED, Lookalikes, ScoreScale
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
#: The columns saying what each structure was judged against (absent from files written before them).
JUDGED_COLUMNS = ("judged_against", "modality_cases")


def structure_scorers(scorers: Sequence[str]) -> list[str]:
    """The scorers that give a value per structure (not one per case, like ``image_auv``)."""
    return [name for name in scorers if name in SCORER_INFO and not SCORER_INFO[name].per_case]


def worst_slice(record: CaseRecord, class_name: str, scorers: Sequence[str]) -> tuple[str, int] | None:
    """(scorer, slice index) of the highest per-slice value of the first of ``scorers`` that has one for the class.

    Example:
        >>> from auvcore.results.case_record import ScorerValues
        >>> record = CaseRecord("c", "i", "l", scores={"agreement": ScorerValues({"liver": 0.2}, {"liver": [0.1, 0.3, None]})})
        >>> worst_slice(record, "liver", ["consistency", "agreement"])
        ('agreement', 1)
    """
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


def worst_slice_centre(record: CaseRecord, class_name: str, index: int) -> tuple[float | None, float | None, float | None]:
    """The LPS centre of the class's voxels on slice ``index``; for an older record, only the slice's s (r, a None)."""
    centre = record.structure_centre(class_name, index)
    if centre is not None:
        return centre[0], centre[1], centre[2]
    if record.slice_centres_lps and index < len(record.slice_centres_lps):
        return None, None, float(record.slice_centres_lps[index][2])
    return None, None, None


def _most_unusual_first(per_slice: Sequence[str], z_of: Mapping[str, float]) -> list[str]:
    """The per-slice scorers, the one under which the structure is most unusual (highest z) first."""
    def key(name: str) -> float:
        value = z_of.get(name, math.nan)
        return -value if math.isfinite(value) else math.inf
    return sorted(per_slice, key=key)


def structure_scales(records: Sequence[CaseRecord], scorers: Sequence[str]) -> dict[str, ScoreScale]:
    """Each per-structure scorer's per-class scale over the scored ``records`` (within each modality where enough
    cases hold the class): what the ``<scorer>_z`` columns are against, and what ``reference.json`` keeps for them."""
    scored = [r for r in records if r.ok]
    modalities = case_modalities(scored)
    return {name: ScoreScale.fit(class_matrix(scored, name), "mean", **scale_options(name), modalities=modalities)
            for name in structure_scorers(scorers)}


def cohort_lookalikes(records: Sequence[CaseRecord]) -> Lookalikes:
    """How many cases of each modality hold each class among the scored ``records``."""
    import pandas as pd

    scored = [r for r in records if r.ok]
    held = pd.DataFrame([{c.name: 1.0 for c in r.classes} for r in scored], index=[r.case_id for r in scored], dtype="float64")
    return Lookalikes.of(held, case_modalities(scored))


def structures_table(records: Sequence[CaseRecord], scorers: Sequence[str], scales: dict[str, ScoreScale] | None = None,
                     lookalikes: Lookalikes | None = None) -> "pd.DataFrame":
    """One row per (case, class) of the scored cases.

    Args:
        scorers: the scorers computed (their per-structure ones become columns).
        scales: a saved cohort's scales to take each class's median and spread
            from (placing cases on a reference); by default they are fitted on ``records``.
        lookalikes: what the saved cohort's classes can be judged against (with ``scales``); by default
            counted on ``records``. With ``scales`` and no ``lookalikes`` (a reference saved before they
            were), ``judged_against`` is empty.
    """
    import pandas as pd

    names = structure_scorers(scorers)
    scored = [r for r in records if r.ok]
    z = {}
    modalities = case_modalities(scored)
    parts = _label_check_parts(scored, modalities) if LABEL_CHECK in names and scales is None else None
    if scales is None:
        scales, lookalikes = structure_scales(scored, names), cohort_lookalikes(scored)
    for name in names:
        matrix = class_matrix(scored, name)
        scale = scales.get(name)
        z[name] = scale.class_z(matrix, modalities) if scale is not None and scale.class_stats else None
    per_slice = [n for n in names if SCORER_INFO[n].per_slice]
    rows = []
    for record in scored:
        for item in record.classes:
            judged, own = lookalikes.basis(record.modality, item.name) if lookalikes is not None else (None, None)
            row = {"case_id": record.case_id, "class_id": item.id, "class": item.name, "modality": record.modality,
                   "judged_against": judged, "modality_cases": own, "slices": item.rows, "voxels": item.voxels}
            for name in names:
                row[name] = record.class_values(name).get(item.name, math.nan)
                frame = z[name]
                row[f"{name}_z"] = frame.at[record.case_id, item.name] if frame is not None and item.name in frame.columns else math.nan
            if parts is not None:
                row[LABEL_CHECK_PARTS_COLUMN] = parts.at[record.case_id, item.name] if item.name in parts.columns else ""
            worst = worst_slice(record, item.name, _most_unusual_first(per_slice, {n: row[f"{n}_z"] for n in per_slice}))
            row["worst_slice_scorer"], row["worst_slice"] = worst if worst else (None, None)
            row.update(dict(zip(_LPS, worst_slice_centre(record, item.name, worst[1]) if worst else (None, None, None))))
            rows.append(row)
    columns = ["case_id", "class_id", "class", "modality", *JUDGED_COLUMNS, "slices", "voxels",
               *[c for n in names for c in (n, f"{n}_z")], *([LABEL_CHECK_PARTS_COLUMN] if parts is not None else []),
               "worst_slice_scorer", "worst_slice", *_LPS]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"voxels": "Int64", "worst_slice": "Int64", "modality_cases": "Int64"})


def judged(structures: "pd.DataFrame") -> "pd.Series":
    """Which rows were judged against enough look-alikes of their class and modality (all, in a file older than the column).

    Example:
        >>> import pandas as pd
        >>> judged(pd.DataFrame({"judged_against": ["modality", "pooled", None]})).tolist()
        [True, False, True]
    """
    import pandas as pd

    if "judged_against" not in structures.columns:
        return pd.Series(True, index=structures.index)
    basis = structures["judged_against"]
    return (basis == JUDGED) | basis.isna()


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
