"""The paper's quantile filter: which cases a keep fraction p retains.

* The quantile is the paper's F^-1(p): the smallest AUV x whose empirical CDF
  F(x) >= p; the cases with AUV <= x are kept, so ties at x are all kept.
* Cases whose scoring failed (status ``error`` or AUV NaN) take no part in the
  quantile: they are neither kept nor excluded by it, and are not retained
  unless a curator includes them by hand.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..results.table import require_columns

if TYPE_CHECKING:
    import pandas as pd

    from .exclusions import ExclusionList

#: The keep fraction used when neither the caller nor a previous filter gives one (the paper's default).
DEFAULT_KEEP = 0.95
#: Relative tolerance when comparing F(x) with p: ``0.7 * 10`` is 7.000000000000001
#: in floating point, and keeping 70 % of 10 cases must keep 7, not 8.
CDF_TOLERANCE = 1e-9


def scored_cases(results: pd.DataFrame, by: str = "auv") -> pd.DataFrame:
    """The rows of cases that were scored: status ``ok`` (when given) and a finite value in column ``by``."""
    import pandas as pd

    require_columns(results, ("case_id", by))
    values = pd.to_numeric(results[by], errors="coerce")
    ok = np.isfinite(values.to_numpy(dtype=np.float64))
    if "status" in results:
        ok &= (results["status"] == "ok").to_numpy()
    scored = results.loc[ok].copy()
    scored["case_id"] = scored["case_id"].astype(str)
    scored[by] = values[ok].astype(np.float64)
    return scored


def check_keep(keep: float) -> None:
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")


def quantile_threshold(auv_values: Sequence[float] | np.ndarray | pd.Series, keep: float) -> float:
    """The paper's F^-1(p): the smallest AUV x with empirical CDF F(x) >= p (p = ``keep``).

    Keeping the cases with AUV <= x keeps at least a fraction p; cases tied at
    x are all kept. NaN values (failed cases) are ignored.

    Example:
        >>> quantile_threshold([0.1, 0.5, 0.5, 0.5, 0.9], keep=0.5)  # F(0.5) = 0.8
        0.5
        >>> quantile_threshold([0.3], keep=0.95), quantile_threshold([0.2, 0.6], keep=0.5)
        (0.3, 0.2)

    Raises:
        ValueError: ``keep`` outside (0, 1], or no finite value.
    """
    check_keep(keep)
    values = np.sort(np.asarray(auv_values, dtype=np.float64))
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("no scored case (every AUV is NaN): there is no quantile")
    # F(values[k]) >= (k + 1) / n, so F^-1(p) is values[ceil(p n) - 1].
    rank = math.ceil(keep * values.size * (1.0 - CDF_TOLERANCE))
    return float(values[max(rank, 1) - 1])


def retained_cases(results: pd.DataFrame, exclusions: ExclusionList) -> list[str]:
    """Case ids to train on, in the results' order.

    A scored case is retained unless excluded; a failed case only when a
    curator included it by hand.
    """
    require_columns(results, ("case_id", "auv"))
    scored = set(scored_cases(results)["case_id"])
    excluded = exclusions.excluded()
    by_hand = exclusions.included_by_hand()
    ids = results["case_id"].astype(str)
    return [c for c in ids if (c in scored and c not in excluded) or c in by_hand]


