"""The AUV measure: class-wise semantic perception scale S and the cohort AUV.

No model and no I/O here: tensors in, numbers out (SPEC §3).

For one class c of a case, ``z_c`` is a (D, N) matrix whose rows are the slices
where the class is present. Its squared singular values, normalised to sum to
one, form an energy distribution ``p``; the semantic perception scale is the
normalised Shannon entropy of ``p``::

    S(Z|c) = -sum_j p_j log p_j / log(min(n_c, N))

High S means high-rank, rich features (easy / clean), low S concentrated energy
(hard / noisy). Over a cohort, ``a_i = -log(sum_c S(Z_i|c))`` is min-max
normalised into the AUV in [0, 1], where 1 is the hardest case (:mod:`auvcore.scales`,
torch-free, so a saved cohort's scale is used without a model).

Example:
    >>> import torch
    >>> from auvcore.spectrum import semantic_scale
    >>> rank_one = torch.ones(1, 4, 10)            # one class, 4 identical rows
    >>> float(semantic_scale(rank_one)[0])
    0.0
    >>> orthogonal = torch.eye(4).reshape(1, 4, 4)  # equal energy, orthogonal rows
    >>> round(float(semantic_scale(orthogonal)[0]), 6)
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

SpectrumMethod = Literal["auto", "gram", "svd"]

#: Reasons reported when S(Z|c) is undefined (the value is NaN).
TOO_FEW_ROWS = "fewer than 2 slices hold the class"
ZERO_ENERGY = "the class's features have zero energy"


@dataclass(frozen=True)
class SemanticScales:
    """Per-class semantic perception scales of one case.

    Attributes:
        values: float64 tensor (C,), S(Z|c) in [0, 1]; NaN where undefined.
        rows: int64 tensor (C,), the number of kept rows n_c per class.
        reasons: one entry per class, ``None`` where S is defined, else why not.
        energy: float64 tensor (C, max n_c), each class's normalised energy
            distribution p (squared singular values over their sum), largest
            first and zero-padded: the distribution S is the entropy of.
    """

    values: torch.Tensor
    rows: torch.Tensor
    reasons: tuple[str | None, ...]
    energy: torch.Tensor = torch.empty(0, 0, dtype=torch.float64)

    @property
    def missing(self) -> dict[int, str]:
        """Class index -> reason, for the classes whose S is undefined."""
        return {c: r for c, r in enumerate(self.reasons) if r is not None}

    def total(self) -> float:
        """S(Z): the sum of S(Z|c) over the classes where it is defined (NaN if none)."""
        defined = self.values[~torch.isnan(self.values)]
        return float(defined.sum()) if defined.numel() else math.nan


def _as_rows(z: torch.Tensor) -> torch.Tensor:
    if z.ndim == 4:
        return z.reshape(z.shape[0], z.shape[1], -1)
    if z.ndim == 3:
        return z
    raise ValueError(f"z must have shape (C, D, H, W) or (C, D, N), got {tuple(z.shape)}")


#: Columns per float64 Gram update; bounds the float64 copy to C x D x 8192 values.
GRAM_CHUNK = 8192


def _energy_spectrum(rows: torch.Tensor, method: SpectrumMethod) -> torch.Tensor:
    """Squared singular values of each class's (D, N) matrix in float64, shape (C, min(D, N))."""
    n_rows, n_cols = rows.shape[1], rows.shape[2]
    if method == "svd":
        return torch.linalg.svdvals(rows).double() ** 2
    # Gram path: eigenvalues of the small side's Gram matrix, accumulated in float64
    # (a float32 Gram squares the round-off and drowns the small eigenvalues).
    if n_rows <= n_cols:
        gram = torch.zeros(rows.shape[0], n_rows, n_rows, dtype=torch.float64, device=rows.device)
        for start in range(0, n_cols, GRAM_CHUNK):
            block = rows[:, :, start : start + GRAM_CHUNK].double()
            gram += block @ block.mT
    else:
        wide = rows.double()
        gram = wide.mT @ wide
    return torch.linalg.eigvalsh(gram)


def _choose_method(method: SpectrumMethod) -> SpectrumMethod:
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {method!r}")
    return "gram" if method == "auto" else method


def _kept_rows(rows: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Each class's kept rows packed to the front, zero-padded to the largest n_c.

    Zero rows add only zero singular values, so the spectrum is unchanged while
    the work shrinks from D rows to max_c n_c rows.
    """
    width = int(keep.sum(dim=1).max()) if keep.numel() else 0
    order = torch.argsort(keep.to(torch.int8), dim=1, descending=True, stable=True)[:, :width]
    packed = torch.gather(rows, 1, order.unsqueeze(-1).expand(-1, -1, rows.shape[2]))
    return packed * torch.gather(keep, 1, order).unsqueeze(-1)


def class_spectra(
    z: torch.Tensor,
    present: torch.Tensor | None = None,
    method: SpectrumMethod = "auto",
) -> SemanticScales:
    """S(Z|c) for every class of one case, all classes in one batched call.

    Args:
        z: class-wise features, (C, D, H, W) or (C, D, N). Computed in float32 on
            ``z``'s device; the energy spectrum is accumulated in float64.
        present: optional bool (C, D): the rows (slices) to keep for each class.
            Rows not kept are zeroed, which removes them from the spectrum
            without changing the other singular values. Default: all rows.
        method: ``"gram"`` (eigenvalues of the small Gram matrix, the fast path),
            ``"svd"`` (direct singular values) or ``"auto"`` (= gram).

    Returns:
        SemanticScales with values in [0, 1], NaN and a reason where undefined.
    """
    rows = _as_rows(z).float()
    n_classes, n_rows, n_cols = rows.shape
    if present is None:
        keep = torch.ones(n_classes, n_rows, dtype=torch.bool, device=rows.device)
    else:
        keep = present.to(device=rows.device, dtype=torch.bool)
        if keep.shape != (n_classes, n_rows):
            raise ValueError(f"present must have shape {(n_classes, n_rows)}, got {tuple(keep.shape)}")
    if not torch.isfinite(rows).all():
        raise ValueError("z holds NaN or infinite values")
    n_kept = keep.sum(dim=1)
    if n_classes == 0:
        return SemanticScales(torch.empty(0, dtype=torch.float64), n_kept.cpu(), ())

    packed = _kept_rows(rows, keep)
    if packed.shape[1] == 0:
        total = torch.zeros(n_classes, dtype=torch.float64, device=rows.device)
        scales = torch.zeros(n_classes, dtype=torch.float64, device=rows.device)
        p = torch.zeros(n_classes, 0, dtype=torch.float64, device=rows.device)
    else:
        energy = _energy_spectrum(packed, _choose_method(method)).clamp_min(0.0)
        # Round-off leaves tiny eigenvalues where the true ones are zero (float32
        # input); drop those below that floor so a rank-1 matrix gives S = 0.
        floor = max(packed.shape[1], n_cols) * torch.finfo(torch.float32).eps ** 2
        energy = torch.where(energy > energy.amax(dim=1, keepdim=True) * floor, energy, 0.0)
        total = energy.sum(dim=1)
        p = energy / total.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(1)
        entropy = -torch.special.xlogy(p, p).sum(dim=1)
        dof = torch.minimum(n_kept, torch.tensor(n_cols, device=n_kept.device)).double()
        scales = (entropy / torch.log(dof.clamp_min(2.0))).clamp(0.0, 1.0) + 0.0

    reasons: list[str | None] = []
    for kept, energy_sum in zip(n_kept.tolist(), total.tolist()):
        if kept < 2 or n_cols < 2:
            reasons.append(TOO_FEW_ROWS)
        elif energy_sum <= 0.0:
            reasons.append(ZERO_ENERGY)
        else:
            reasons.append(None)
    undefined = torch.tensor([r is not None for r in reasons], device=scales.device)
    scales = torch.where(undefined, torch.full_like(scales, math.nan), scales)
    energy = p.sort(dim=1, descending=True).values[:, : packed.shape[1]]
    return SemanticScales(scales.cpu(), n_kept.cpu(), tuple(reasons), energy.cpu())


def semantic_scale(
    z: torch.Tensor,
    present: torch.Tensor | None = None,
    method: SpectrumMethod = "auto",
) -> torch.Tensor:
    """S(Z|c) per class as a float64 tensor (C,), NaN where undefined.

    The reasons for undefined values are in :func:`class_spectra`.

    Example:
        >>> import torch
        >>> z = torch.randn(3, 8, 16, 16)
        >>> s = semantic_scale(z)
        >>> s.shape, s.dtype
        (torch.Size([3]), torch.float64)
    """
    return class_spectra(z, present, method).values
