"""A detector of bad structures fitted by the self-audit: a small, regularised logistic regression.

``auv audit --fit`` learns it from the corruptions the audit planted in the
user's own cohort. Each structure is described by every scorer's robust z
within its class (as ``structures.csv`` has them), the largest of those z, its
slice count, the log of its voxel count and its modality; the label is whether
the audit corrupted it.

An audit plants few errors (tens of structures), so the fit is constrained:
the weight of every z is at least 0, and a strong L2 penalty draws the weights
towards ``label_check`` (its weight that of a fit on it alone, every other 0),
not towards 0. Each z is oriented so that higher is more unusual; a negative
weight would be a pattern of this audit's few corruptions, and it is what made
an unconstrained fit miss a kind of error it had not seen (label dropout, found
by one scorer only). Drawn towards 0, the fit also forgot the parts of
``label_check`` that the kinds it was fitted on did not need; drawn towards
``label_check``, it departs from that fixed sum only as far as the audit shows.
It is judged on what it was not fitted on, beside the unfitted ``label_check``
on the same structures:

* leave-one-kind-out: fitted without one corruption kind, tested on that kind
  against the clean structures;
* leave-one-case-out: fitted without every structure of one source case
  (clean or corrupted copies), tested on them; the AUROC pools the cases.
  Where the manifest names each case's scan or patient (its ``source``
  column), every case of that source is left out together.

``detector.json`` holds the coefficients, the feature scaling and the audit it
came from; ``auv score --detector detector.json`` adds a ``detector`` column
(the probability that a structure is corrupted) to ``structures.csv`` and its
maximum over the case's structures to the results table.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"agreement_z": [0.1, -0.2, 3.0, 2.5], "slices": [8, 9, 8, 7],
    ...                       "voxels": [900, 1000, 950, 800], "modality": ["ct"] * 4})
    >>> detector = fit_detector(table, [False, False, True, True], ("agreement",))
    >>> detector.predict(table).round(2).tolist()[:2] < detector.predict(table).round(2).tolist()[2:]
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..files import write_json_atomic
from ..results.case_record import CaseRecord
from ..scorers.registry import LABEL_CHECK
from .metrics import auroc

DETECTOR_JSON = "detector.json"
FORMAT_MARKER = "auv-detector"
#: Inverse L2 strength of the logistic regression (on standardised features): strong, for few positives.
REGULARISATION_C = 0.05


def feature_table(structures: pd.DataFrame, scorers: Sequence[str]) -> pd.DataFrame:
    """The detector's features of each structure (missing z are 0: the class median, no evidence).

    ``largest_z`` is the largest of the scorers' z: a feature that does not
    depend on which scorer sees an error, so the detector can flag a kind of
    error it was not fitted on when the one scorer aimed at it fires.
    """
    columns = {f"{name}_z": structures.get(f"{name}_z", pd.Series(np.nan, index=structures.index)) for name in scorers}
    features = pd.DataFrame(columns, index=structures.index).astype("float64").fillna(0.0)
    features["largest_z"] = features.max(axis=1) if len(features.columns) else 0.0
    features["slices"] = structures["slices"].astype("float64")
    features["log_voxels"] = np.log1p(structures["voxels"].astype("float64").fillna(0.0))
    features["ct"] = (structures["modality"].astype(str) == "ct").astype("float64")
    return features


@dataclass(frozen=True)
class Detector:
    """A fitted detector: ``p = sigmoid(intercept + coefficients . (x - mean) / scale)``."""

    scorers: tuple[str, ...]
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    source: dict[str, Any] = field(default_factory=dict)

    def predict(self, structures: pd.DataFrame) -> np.ndarray:
        """Probability that each structure is corrupted."""
        x = feature_table(structures, self.scorers)[list(self.features)].to_numpy(dtype=np.float64)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coefficients) + self.intercept)))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_MARKER, "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "Detector":
        if not isinstance(data, dict) or data.get("format") != FORMAT_MARKER:
            raise ValueError(f"is not an AUV detector (no \"format\": \"{FORMAT_MARKER}\")")
        return cls(tuple(data["scorers"]), tuple(data["features"]), tuple(map(float, data["mean"])),
                   tuple(map(float, data["scale"])), tuple(map(float, data["coefficients"])), float(data["intercept"]),
                   dict(data.get("source") or {}))


def _fit_logistic(x: np.ndarray, labels: np.ndarray, non_negative: np.ndarray, c: float,
                  prior: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression (L-BFGS-B) with the ``non_negative`` columns' weights >= 0, its weights
    drawn towards ``prior`` (0 by default) by an L2 penalty of strength 1 / ``c``.

    Returns (coefficients, intercept) for standardised ``x``.
    """
    prior = np.zeros(x.shape[1]) if prior is None else prior
    from scipy.optimize import minimize

    weights = np.where(labels, 0.5 / labels.mean(), 0.5 / (1.0 - labels.mean()))  # each class weighs half

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = x @ theta[1:] + theta[0]
        per_row = np.where(labels, np.logaddexp(0.0, -margin), np.logaddexp(0.0, margin))
        residual = weights * (1.0 / (1.0 + np.exp(-margin)) - labels)
        offset = theta[1:] - prior
        value = float(weights @ per_row + 0.5 / c * offset @ offset)
        return value, np.concatenate([[residual.sum()], x.T @ residual + offset / c])

    bounds = [(None, None), *((0.0, None) if keep else (None, None) for keep in non_negative)]
    result = minimize(loss, np.concatenate([[0.0], prior]), jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[1:], float(result.x[0])


def fit_detector(structures: pd.DataFrame, corrupted: Sequence[bool], scorers: Sequence[str], source: dict | None = None,
                 c: float = REGULARISATION_C, constrained: bool = True, prior: str | None = LABEL_CHECK) -> Detector:
    """Fit on one row per structure; ``corrupted`` says which the audit planted.

    ``c``, ``constrained`` (every z's weight >= 0) and ``prior`` (the scorer whose z the weights are drawn towards,
    where the table has it; None: towards 0) are the product's choice; other values are for comparing fits
    (``Testing/benchmarks/detector_fits.py``).
    """
    features = feature_table(structures, scorers)
    x = features.to_numpy(dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    labels = np.asarray(corrupted, dtype=bool)
    if labels.all() or not labels.any():
        raise ValueError("the detector needs corrupted and clean structures")
    z_columns = np.asarray([constrained and name.endswith("_z") for name in features.columns])
    standard = (x - mean) / scale
    centre = None
    if prior is not None and f"{prior}_z" in features.columns:
        # the prior's weight: a fit on that z alone (weakly held); the full fit is drawn towards it, not towards 0
        column = list(features.columns).index(f"{prior}_z")
        alone, _ = _fit_logistic(standard[:, [column]], labels, z_columns[[column]], 1.0)
        centre = np.zeros(x.shape[1])
        centre[column] = alone[0]
    coefficients, intercept = _fit_logistic(standard, labels, z_columns, c, centre)
    return Detector(tuple(scorers), tuple(features.columns), tuple(mean.tolist()), tuple(scale.tolist()),
                    tuple(coefficients.tolist()), intercept, source or {})


def held_out_figures(structures: pd.DataFrame, kinds: Sequence[str], groups: Sequence[str], scorers: Sequence[str],
                     **fit: Any) -> dict[str, float]:
    """AUROC of the detector on what it was not fitted on: each left-out kind, and left-out cases pooled; and, where
    the table has its z, of the unfitted ``label_check`` on the same structures (the kinds' mean, and every
    structure: the figures a fitted detector has to beat to be worth using).

    ``kinds`` is ``clean`` or the corruption kind of each structure, ``groups`` its source case.
    """
    kinds, groups = np.asarray(kinds, dtype=object), np.asarray(groups, dtype=object)
    corrupted = kinds != "clean"
    figures: dict[str, float] = {}
    for kind in sorted(set(kinds) - {"clean"}):
        train = kinds != kind
        test = ~train | ~corrupted
        if corrupted[train].any() and corrupted[test].any():
            detector = fit_detector(structures[train], corrupted[train], scorers, **fit)
            figures[f"leave_out_{kind}"] = auroc(detector.predict(structures[test]), corrupted[test])
    held = np.full(len(kinds), np.nan)
    for group in sorted(set(groups)):
        test = groups == group
        if corrupted[~test].any() and (~corrupted[~test]).any():
            held[test] = fit_detector(structures[~test], corrupted[~test], scorers, **fit).predict(structures[test])
    figures["leave_one_case_out"] = auroc(held, corrupted)
    kind_values = [v for k, v in figures.items() if k.startswith("leave_out_") and math.isfinite(v)]
    figures["leave_one_kind_out_mean"] = float(np.mean(kind_values)) if kind_values else math.nan
    if f"{LABEL_CHECK}_z" in structures:
        fixed = structures[f"{LABEL_CHECK}_z"].fillna(0.0).to_numpy(dtype=np.float64)
        per_kind = [auroc(fixed[(kinds == kind) | ~corrupted], corrupted[(kinds == kind) | ~corrupted])
                    for kind in sorted(set(kinds) - {"clean"})]
        figures[f"unfitted_{LABEL_CHECK}_kind_mean"] = float(np.nanmean(per_kind)) if per_kind else math.nan
        figures[f"unfitted_{LABEL_CHECK}"] = auroc(fixed, corrupted)
    return figures


def audit_structures(scores: pd.DataFrame, records: Mapping[str, CaseRecord],
                     scans: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """One row per audited structure (repeat, case, class): its kind, source case, scan, every scorer's z, size and
    modality.

    ``scores`` is the audit's ``scores.csv`` (its ``class`` level rows hold the z). ``scans`` maps a clean case to
    the scan or patient it was cut from (the manifest's ``source``); the ``scan`` column is the case itself where
    none is given.
    """
    part = scores[scores["level"] == "class"]
    wide = part.pivot_table(index=["repeat", "unit", "kind"], columns="scorer", values="score", sort=False).reset_index()
    wide.columns = [c if c in ("repeat", "unit", "kind") else f"{c}_z" for c in wide.columns]
    split = wide["unit"].str.rsplit("/", n=1, expand=True)
    wide.insert(1, "case_id", split[0])
    wide.insert(2, "class", split[1])
    wide["source"] = wide["case_id"].str.split("~").str[0]
    wide["scan"] = [(scans or {}).get(case) or case for case in wide["source"]]
    sizes = {(r.case_id, c.name): (c.rows, c.voxels, r.modality) for r in records.values() if r.ok for c in r.classes}
    looked_up = [sizes.get((case, name), (math.nan, math.nan, None)) for case, name in zip(wide["case_id"], wide["class"])]
    wide["slices"], wide["voxels"], wide["modality"] = zip(*looked_up) if looked_up else ((), (), ())
    # Rows of a per-case scorer (``image_auv``'s class "image") describe no structure.
    return wide[wide["slices"].notna()].drop(columns="unit").reset_index(drop=True)


def save_detector(path: str | Path, detector: Detector) -> None:
    write_json_atomic(path, detector.to_dict())


def load_detector(path: str | Path) -> Detector:
    """Read ``detector.json``; InputError naming it when it is missing or not one."""
    path = Path(path)
    try:
        return Detector.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise InputError(path, "does not exist (`auv audit --fit` writes it)") from None
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as error:
        raise InputError(path, f"is not a detector of `auv audit --fit` ({error})") from None
