"""Layer-wise optimal brain surgery (OBS): the column sweep SparseGPT and GPTQ share.

Both methods replace a matrix ``W`` (``[rows, cols]``, the ``[out, in]`` view)
column by column by a constrained ``Q`` (a pruned or a quantized column) and
spread each column's error over the columns not yet processed, so that the
layer output ``W X`` on the calibration inputs changes as little as possible
(Frantar & Alistarh 2022, "Optimal Brain Compression"; SparseGPT, GPTQ). With
``H = 2 X^T X / n`` and ``U`` the upper Cholesky factor of ``(H + λI)^{-1}``
(``λ = percdamp * mean(diag H)``), processing column ``j`` with error
``e = (w_j - q_j) / U_jj`` updates the later columns by ``-e U_{j, j:}``. As in
the reference code the updates are applied eagerly inside a block of
``blocksize`` columns and lazily (one matrix product) to the columns after it.

What a method does with each column is a :class:`ColumnRule`: SparseGPT's
rules (:class:`BlockMaskRule`, :class:`NmMaskRule`) are here; GPTQ's grid rule
is in :mod:`compfair.compression.methods.gptq`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import torch

log = logging.getLogger(__name__)


def inverse_hessian_factor(
    hessian: torch.Tensor, percdamp: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U, dead)``: the upper Cholesky factor of ``(H + λI)^{-1}`` and the dead inputs.

    ``hessian`` (``[n, n]``) is not modified. ``dead`` marks inputs that were
    never non-zero (``H_jj == 0``): their diagonal is set to 1 before damping
    (their weights are irrelevant and the caller zeroes them, as the reference
    does). ``λ = percdamp * mean(diag H)``. Raises ``RuntimeError`` naming the
    damping if ``H + λI`` is not positive definite.
    """
    h = hessian.to(torch.float32).clone()
    diag = torch.diagonal(h)
    dead = diag == 0
    diag[dead] = 1.0
    diag += percdamp * diag.mean()
    try:
        lower = torch.linalg.cholesky(h)
        inverse = torch.cholesky_inverse(lower)
        upper = torch.linalg.cholesky(inverse, upper=True)
    except torch.linalg.LinAlgError as exc:
        raise RuntimeError(
            f"the damped Hessian is not positive definite (percdamp {percdamp}); raise percdamp"
        ) from exc
    return upper, dead


class Sweep:
    """The state of one column sweep: the working matrix and the current block.

    ``weight`` (``[rows, cols]`` fp32) is overwritten with the result.
    ``block`` is the current block's working copy (columns ``i1:i2``),
    ``errors`` the scaled errors of its processed columns.
    """

    def __init__(self, weight: torch.Tensor, upper: torch.Tensor) -> None:
        self.weight, self.upper = weight, upper
        self.i1 = self.i2 = 0
        self.block = self.errors = weight[:, :0]

    def current(self, start: int, stop: int) -> torch.Tensor:
        """Columns ``start:stop`` (``start`` inside the current block) as the sweep now has them.

        Columns of the current block are read from its working copy; columns
        after it get the lazy update of the block's processed columns added, so
        the values are what column ``start`` will see when it is reached.
        """
        stop = min(stop, self.weight.shape[1])
        inside = self.block[:, start - self.i1 : min(stop, self.i2) - self.i1]
        if stop <= self.i2:
            return inside
        done = start - self.i1  # the block's columns processed so far
        later = (
            self.weight[:, self.i2 : stop]
            - self.errors[:, :done] @ self.upper[self.i1 : self.i1 + done, self.i2 : stop]
        )
        return torch.cat([inside, later], dim=1)

    def diag(self, start: int, stop: int) -> torch.Tensor:
        """``U_jj`` for columns ``start:stop``."""
        return torch.diagonal(self.upper)[start:stop]


class ColumnRule(Protocol):
    """What a method makes of each column during a sweep."""

    def begin_block(self, sweep: Sweep) -> None:
        """Called when a block of columns starts (``sweep.i1:sweep.i2``)."""

    def column(self, sweep: Sweep, j: int, w: torch.Tensor) -> torch.Tensor:
        """The constrained column ``q`` (``[rows]``) replacing column ``j`` whose values are ``w``."""


def obs_sweep(weight: torch.Tensor, upper: torch.Tensor, rule: ColumnRule, blocksize: int) -> None:
    """Replace ``weight`` (``[rows, cols]`` fp32) in place, column by column, by ``rule``'s columns.

    ``upper``: from :func:`inverse_hessian_factor`. Each column's error is
    compensated on the columns after it; the returned columns are exactly what
    ``rule.column`` gave (a zero stays an exact zero, a grid value stays on the
    grid).
    """
    sweep = Sweep(weight, upper)
    cols = weight.shape[1]
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        sweep.i1, sweep.i2 = i1, i2
        sweep.block = weight[:, i1:i2].clone()
        sweep.errors = torch.zeros_like(sweep.block)
        result = torch.zeros_like(sweep.block)
        local = upper[i1:i2, i1:i2]
        rule.begin_block(sweep)
        for i in range(i2 - i1):
            w = sweep.block[:, i]
            q = rule.column(sweep, i1 + i, w)
            result[:, i] = q
            err = (w - q) / local[i, i]
            sweep.block[:, i:] -= err.unsqueeze(1) * local[i, i:].unsqueeze(0)
            sweep.errors[:, i] = err
        weight[:, i1:i2] = result
        if i2 < cols:
            weight[:, i2:] -= sweep.errors @ upper[i1:i2, i2:]


def output_error(
    original: torch.Tensor, compressed: torch.Tensor, hessian: torch.Tensor
) -> dict[str, float]:
    """How far ``compressed`` is from ``original`` (both ``[rows, cols]``) on the layer's inputs.

    ``hessian`` is ``2 X^T X / n`` of the calibration inputs, so
    ``tr(D H D^T) / 2 = ||X D^T||_F^2 / n`` for ``D = original - compressed``.
    Returns ``output_rel`` (``||X D^T||_F / ||X W^T||_F``), ``output_sq``
    (``||X D^T||_F^2`` per calibration token) and ``weight_rel``
    (``||D||_F / ||W||_F``).
    """
    return output_errors(original, [compressed], hessian)[0]


def output_errors(
    original: torch.Tensor, candidates: list[torch.Tensor], hessian: torch.Tensor
) -> list[dict[str, float]]:
    """:func:`output_error` of each of ``candidates`` against ``original`` (one ``W H`` product)."""
    w = original.to(torch.float32)
    ref = float(((w @ hessian) * w).sum()) / 2
    w_norm = float(w.norm())
    out = []
    for compressed in candidates:
        d = w - compressed.to(torch.float32)
        err = max(float(((d @ hessian) * d).sum()) / 2, 0.0)
        out.append(
            {
                "output_rel": (err / ref) ** 0.5 if ref > 0 else 0.0,
                "output_sq": err,
                "weight_rel": float(d.norm()) / w_norm if w_norm > 0 else 0.0,
            }
        )
    return out


def lowest_mask(scores: torch.Tensor, n: int) -> torch.Tensor:
    """A bool mask of the ``n`` lowest entries of ``scores`` (ties: first positions first)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if n > 0:
        mask[torch.sort(scores.flatten(), stable=True).indices[:n]] = True
    return mask.view_as(scores)


def row_group_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Bool mask of the ``n`` lowest scores in every group of ``m`` consecutive columns per row.

    ``scores``: ``[rows, cols]`` with ``cols`` a multiple of ``m``. Ties go to
    the first positions of a group.
    """
    rows, cols = scores.shape
    grouped = scores.reshape(rows, cols // m, m)
    order = torch.sort(grouped, dim=-1, stable=True).indices[..., :n]
    mask = torch.zeros_like(grouped, dtype=torch.bool)
    mask.scatter_(-1, order, True)
    return mask.view(rows, cols)


class BlockMaskRule:
    """SparseGPT's unstructured rule: per block of columns, prune the lowest ``w^2 / U_jj^2``.

    The mask of a block is chosen when the block starts (adaptive mask
    selection), from the weights as earlier blocks' updates left them: exactly
    ``round(sparsity * rows * block_cols)`` entries of each block are pruned.
    """

    def __init__(self, sparsity: float) -> None:
        self.sparsity = sparsity
        self.mask = torch.zeros(0, 0, dtype=torch.bool)
        self.n_pruned = 0

    def begin_block(self, sweep: Sweep) -> None:
        scores = sweep.block.pow(2) / sweep.diag(sweep.i1, sweep.i2).pow(2).unsqueeze(0)
        n = round(self.sparsity * scores.numel())
        self.mask = lowest_mask(scores, n)
        self.n_pruned += n

    def column(self, sweep: Sweep, j: int, w: torch.Tensor) -> torch.Tensor:
        return w.masked_fill(self.mask[:, j - sweep.i1], 0.0)


class NmMaskRule:
    """SparseGPT's N:M rule: at the start of every group of ``m`` columns prune ``n`` per row.

    The ``n`` of each row are the lowest ``w^2 / U_jj^2`` of the group's columns
    as the sweep has them when the group starts.
    """

    def __init__(self, n: int, m: int) -> None:
        self.n, self.m = n, m
        self.mask = torch.zeros(0, 0, dtype=torch.bool)

    def begin_block(self, sweep: Sweep) -> None:
        pass

    def column(self, sweep: Sweep, j: int, w: torch.Tensor) -> torch.Tensor:
        if j % self.m == 0:
            group = sweep.current(j, j + self.m)
            scores = group.pow(2) / sweep.diag(j, j + self.m).pow(2).unsqueeze(0)
            self.mask = row_group_mask(scores, self.n, self.m)
        return w.masked_fill(self.mask[:, j % self.m], 0.0)


def sparsegpt(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    rule: ColumnRule,
    blocksize: int = 128,
    percdamp: float = 0.01,
) -> torch.Tensor:
    """SparseGPT (or any rule's) OBS reconstruction of ``weight`` (``[rows, cols]``).

    Returns a new fp32 ``[rows, cols]`` tensor; ``weight`` is not modified.
    Columns of inputs that never fired are zeroed first (as in the reference),
    so a rule sees them as zeros.
    """
    upper, dead = inverse_hessian_factor(hessian, percdamp)
    work = weight.to(torch.float32).clone()
    work[:, dead] = 0.0
    obs_sweep(work, upper, rule, blocksize)
    return work
