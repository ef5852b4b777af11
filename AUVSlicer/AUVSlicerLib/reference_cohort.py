"""Place one case on a reference cohort's AUV scale (``OUT/reference.json`` of ``auv score``).

The file is read and validated by :func:`auvcore.results.load_reference`, the
core's one reader, and a case is placed only when it was scored like the
cohort (backbone, mode, weights and value-changing settings:
:meth:`auvcore.results.SavedReference.check_compatible`). Its S is mapped with
the cohort's min/max of ``-log S``, clipped to [0, 1]. When the cohort's
``results.csv`` sits next to its reference, the case is also ranked among the
cohort's cases.

Example:
    >>> from pathlib import Path
    >>> from auvcore.results import SavedReference
    >>> from auvcore.scales import CohortReference
    >>> saved = SavedReference(CohortReference(0.0, 1.0, 3), "litemedsam", "classwise", {}, Path("reference.json"))
    >>> placement = ReferenceCohort(saved, (0.1, 0.5, 0.9)).place(0.5, "litemedsam", "classwise")
    >>> round(placement.auv, 3), round(placement.harder_than, 3)
    (0.693, 0.667)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from auvcore.results import RESULTS_CSV, SavedReference, load_reference, read_results


@dataclass(frozen=True)
class Placement:
    """A case on a cohort's scale: its AUV, and the share of cohort cases with a lower AUV (NaN if unknown)."""

    auv: float
    harder_than: float
    n_cases: int

    def describe(self) -> str:
        if math.isnan(self.auv):
            return "AUV undefined: no class of the case has a score"
        text = f"AUV {self.auv:.3f} on the reference cohort's scale (n = {self.n_cases})"
        if not math.isnan(self.harder_than):
            text += f"; harder than {100 * self.harder_than:.0f}% of its cases"
        return text


@dataclass(frozen=True)
class ReferenceCohort:
    """A loaded reference and (if found) its cases' AUVs."""

    saved: SavedReference
    cohort_auvs: tuple[float, ...] = ()

    def place(self, case_s: float, backbone: str, mode: str, settings: dict[str, Any] | None = None) -> Placement:
        """Where a case with total scale ``case_s`` falls; InputError naming the file if it was scored otherwise."""
        auv = self.saved.place(case_s, backbone, mode, settings)
        harder_than = math.nan
        if self.cohort_auvs and not math.isnan(auv):
            harder_than = float(np.mean(np.asarray(self.cohort_auvs) < auv))
        return Placement(auv, harder_than, self.saved.scale.n_cases)


def load_reference_cohort(path: str | Path) -> ReferenceCohort:
    """Read a ``reference.json``; ranks too when a ``results.csv`` is beside it."""
    saved = load_reference(path)
    results_csv = saved.path.with_name(RESULTS_CSV)
    auvs = tuple(float(v) for v in read_results(results_csv)["auv"].dropna()) if results_csv.exists() else ()
    return ReferenceCohort(saved, auvs)
