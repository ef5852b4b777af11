"""Place one case on a reference cohort's AUV scale (``OUT/reference.json`` of ``auv score``).

The case's S is mapped with the cohort's min/max of ``-log S``
(:class:`auvcore.spectrum.CohortReference`), clipped to [0, 1]. When the
cohort's ``results.csv`` sits next to its reference, the case is also ranked
among the cohort's cases.

Example:
    >>> from auvcore.scales import CohortReference
    >>> cohort = ReferenceCohort(CohortReference(0.0, 1.0, 3), "ref.json", (0.1, 0.5, 0.9))
    >>> placement = cohort.place(case_s=0.5)
    >>> round(placement.auv, 3), round(placement.harder_than, 3)
    (0.693, 0.667)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from auvcore.results import read_results
from auvcore.errors import InputError
from auvcore.scales import CohortReference


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
    """A loaded reference: its normalisation, its file and (if found) its cases' AUVs."""

    reference: CohortReference
    path: str
    cohort_auvs: tuple[float, ...] = ()
    backbone: str = ""
    mode: str = ""

    def check_comparable(self, backbone: str, mode: str) -> None:
        """Raise ValueError when a case was scored with another backbone or mode than the cohort."""
        for what, ours, theirs in (("backbone", self.backbone, backbone), ("mode", self.mode, mode)):
            if ours and theirs and ours != theirs:
                raise ValueError(f"{self.path}: the reference cohort was scored with {what} {ours!r}, the case with {theirs!r}")

    def place(self, case_s: float) -> Placement:
        """Where a case with total scale ``case_s`` (S of the case, summed over classes) falls."""
        auv = float(self.reference.place(case_s)[0])
        harder_than = math.nan
        if self.cohort_auvs and not math.isnan(auv):
            harder_than = float(np.mean(np.asarray(self.cohort_auvs) < auv))
        return Placement(auv, harder_than, self.reference.n_cases)


def _cohort_auvs(results_csv: Path) -> tuple[float, ...]:
    return tuple(float(v) for v in read_results(results_csv)["auv"].dropna())


def load_reference_cohort(path: str | Path) -> ReferenceCohort:
    """Read a ``reference.json``; ranks too when a ``results.csv`` is beside it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        reference = CohortReference.from_dict(data)
    except FileNotFoundError as error:
        raise InputError(path, "does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot be read as JSON ({error})") from error
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(path, f"is not an `auv score` reference (needs a_min, a_max, n_cases): {error!r}") from error
    if not (math.isfinite(reference.a_min) and math.isfinite(reference.a_max)):
        raise InputError(path, "holds no finite cohort range (no case of the cohort had a score)")
    results_csv = path.with_name("results.csv")
    auvs = _cohort_auvs(results_csv) if results_csv.exists() else ()
    return ReferenceCohort(reference, str(path), auvs, str(data.get("backbone", "")), str(data.get("mode", "")))
