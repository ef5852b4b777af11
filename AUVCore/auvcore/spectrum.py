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


#: Bytes the packed copy of the kept rows may take at once; classes are taken in groups below it.
PACK_BUDGET_BYTES = 1 << 30

#: Bytes of one column block of the centred rows: small enough to stay in cache between its centring and
#: its products. Blocks are summed in float64, so the round-off of long rows (image-mode embeddings,
#: ~10^6 columns) does not grow with them.
CENTRED_BLOCK_BYTES = 8 << 20

#: Eigenvalues of the (centred) float32 Gram carry round-off up to about eps32 x the largest
#: one; those below this multiple of it are noise, not spectrum, and are dropped.
GRAM_NOISE = 4 * torch.finfo(torch.float32).eps


def _centred_gram(rows: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 Gram matrices (C, n, n) of the kept rows from float32 matmuls, and their round-off (C, 1).

    Rows of features share a large common part (neighbouring slices look alike),
    and a float32 Gram of them rounds at eps32 of that part, drowning the small
    eigenvalues that S depends on. So the kept rows' mean r is taken out first,
    Y = (Z - 1 r^T) on the kept rows, and the Gram is put together in float64 as
    Y Y^T + (Y r) k^T + k (Y r)^T + |r|^2 k k^T (k: the kept-row indicator),
    the same matrix, whose round-off scales with |Y| (|Y| + 2 sqrt(n) |r|).

    Y is made one column block at a time in a buffer that stays in cache, and both
    of its products are taken there: the rows are read twice (for r, then for Y),
    and no full-size copy is written.
    """
    n_classes, n_rows, n_cols = rows.shape
    k = keep.to(rows.dtype).unsqueeze(2)  # (C, n, 1)
    count = k.sum(dim=1, keepdim=True)
    mean = (k.mT @ rows) / count.clamp_min(1.0)  # (C, 1, N)
    every_row_kept = bool(keep.all())
    inner = torch.zeros(n_classes, n_rows, n_rows, dtype=torch.float64, device=rows.device)
    cross = torch.zeros(n_classes, n_rows, 1, dtype=torch.float64, device=rows.device)  # Y r
    width = max(1, min(n_cols, CENTRED_BLOCK_BYTES // max(1, n_classes * n_rows * rows.element_size())))
    buffer = rows.new_empty(n_classes, n_rows, width)
    # float32 products over column blocks, summed in float64: the round-off does not grow with N.
    for start in range(0, n_cols, width):
        stop = min(start + width, n_cols)
        block_mean = mean[:, :, start:stop]
        centred = torch.sub(rows[:, :, start:stop], block_mean, out=buffer[:, :, : stop - start])
        if not every_row_kept:  # rows left out are zero in Y
            centred.mul_(k)
        inner += centred @ centred.mT
        cross += centred @ block_mean.mT
    k64 = k.double()
    mean_square = mean.double().square().sum(dim=2, keepdim=True)  # |r|^2, (C, 1, 1)
    gram = inner + cross @ k64.mT + k64 @ cross.mT + mean_square * (k64 @ k64.mT)
    spread = inner.diagonal(dim1=1, dim2=2).sum(dim=1, keepdim=True)  # |Y|_F^2, (C, 1)
    mean_energy = (count.double() * mean_square).squeeze(2)  # n |r|^2, (C, 1)
    return gram, GRAM_NOISE * (spread + 2.0 * torch.sqrt(spread * mean_energy))


def _energy_spectrum(rows: torch.Tensor, keep: torch.Tensor, width: int, method: SpectrumMethod) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared singular values of each class's kept rows in float64 (C, min(width, N)), and the
    level (C, 1) below which they are round-off.

    ``gram``: the Gram matrix of the small side in batched float32 matmuls
    (:func:`_centred_gram`), its eigenvalues in float64; within 1e-6 of the
    float64 SVD. ``svd``: the direct float64 singular values, the reference.
    """
    if method == "gram" and width == rows.shape[1] <= rows.shape[2]:
        gram, noise = _centred_gram(rows, keep)  # every row is someone's: no packed copy
        return torch.linalg.eigvalsh(gram), noise
    packed = _kept_rows(rows, keep, width)
    if method == "gram" and width <= rows.shape[2]:
        packed_keep = torch.arange(width, device=keep.device) < keep.sum(dim=1, keepdim=True)
        gram, noise = _centred_gram(packed, packed_keep)
        return torch.linalg.eigvalsh(gram), noise
    # The float64 reference, and the rare matrix with fewer columns than rows (its small Gram is cheap).
    energy = torch.linalg.svdvals(packed.double()) ** 2
    return energy, energy.amax(dim=1, keepdim=True) * max(width, rows.shape[2]) * torch.finfo(torch.float32).eps ** 2


def _choose_method(method: SpectrumMethod) -> SpectrumMethod:
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {method!r}")
    return "gram" if method == "auto" else method


def _kept_rows(rows: torch.Tensor, keep: torch.Tensor, width: int) -> torch.Tensor:
    """Each class's kept rows copied to the front, zero-padded to ``width`` (the largest n_c).

    Zero rows add only zero singular values, so the spectrum is unchanged while
    the work shrinks from D rows to max_c n_c rows.
    """
    packed = rows.new_zeros(rows.shape[0], width, rows.shape[2])
    for index, (class_rows, class_keep) in enumerate(zip(rows, keep)):
        kept = class_keep.nonzero()[:, 0]
        torch.index_select(class_rows, 0, kept, out=packed[index, : kept.numel()])
    return packed


def _class_energies(rows: torch.Tensor, keep: torch.Tensor, method: SpectrumMethod, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_energy_spectrum` in class groups whose packed copy fits ``budget`` bytes."""
    width = int(keep.sum(dim=1).max())
    per_class = max(1, width * rows.shape[2] * rows.element_size())
    group = max(1, budget // per_class)
    parts = [
        _energy_spectrum(rows[start : start + group], keep[start : start + group], width, method)
        for start in range(0, rows.shape[0], group)
    ]
    return torch.cat([energy for energy, _ in parts]), torch.cat([noise for _, noise in parts])


def class_spectra(
    z: torch.Tensor,
    present: torch.Tensor | None = None,
    method: SpectrumMethod = "auto",
) -> SemanticScales:
    """S(Z|c) for every class of one case, all classes in one batched call.

    Args:
        z: class-wise features, (C, D, H, W) or (C, D, N). The Gram matrices are
            computed in float32 on ``z``'s device, their eigenvalues in float64.
        present: optional bool (C, D): the rows (slices) to keep for each class.
            Rows not kept are zeroed, which removes them from the spectrum
            without changing the other singular values. Default: all rows.
        method: ``"gram"`` (eigenvalues of the small float32 Gram matrix, the
            fast path, within 1e-6 of the float64 SVD on real features),
            ``"svd"`` (direct float64 singular values, the reference) or ``"auto"`` (= gram).

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
    # The extremes propagate NaN: both finite means every value is, in one pass and without a full-size mask.
    if rows.numel() and not torch.isfinite(torch.stack(torch.aminmax(rows))).all():
        raise ValueError("z holds NaN or infinite values")
    n_kept = keep.sum(dim=1)
    if n_classes == 0:
        return SemanticScales(torch.empty(0, dtype=torch.float64), n_kept.cpu(), ())

    if int(n_kept.max()) == 0 or n_cols == 0:
        total = torch.zeros(n_classes, dtype=torch.float64, device=rows.device)
        scales = torch.zeros(n_classes, dtype=torch.float64, device=rows.device)
        p = torch.zeros(n_classes, 0, dtype=torch.float64, device=rows.device)
    else:
        chosen = _choose_method(method)
        energy, noise = _class_energies(rows, keep, chosen, PACK_BUDGET_BYTES)
        # Round-off leaves tiny eigenvalues where the true ones are zero: drop those below its level,
        # and below the float64 eigensolver's own (a rank-1 matrix gives S = 0).
        solver = energy.amax(dim=1, keepdim=True) * energy.shape[1] * torch.finfo(torch.float64).eps
        energy = torch.where(energy > torch.maximum(noise, solver), energy, 0.0)
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
    energy = p.sort(dim=1, descending=True).values[:, : int(n_kept.max()) if n_classes else 0]
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
