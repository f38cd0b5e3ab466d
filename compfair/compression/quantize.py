"""Uniform integer grids for weight-only quantization: per group of input columns of each row.

A *group* is ``group_size`` consecutive input columns of one output row of a
matrix's ``[out, in]`` view (:func:`compfair.architecture.weight_out_in`); with
``group_size=None`` the group is the whole row (per output channel). When
``in`` is not a multiple of ``group_size`` the last group of each row is
shorter. Each group has its own grid ``scale * (q - zero)`` with an integer
code ``q = clamp(round(w / scale) + zero, 0, 2^b - 1)`` (:func:`round_to_grid`)
and an integer ``zero``. The two kinds of grid are GPTQ's (the reference
code's ``quant.py``, ``Quantizer.find_params``, Frantar et al. 2023), and
:mod:`compfair.compression.methods.gptq` calls the same functions, so ``rtn``
and ``gptq`` differ only in the algorithm:

- asymmetric (``sym=False``, :func:`asymmetric_grid`): the range ``[lo, hi] =
  [min(w_min, 0), max(w_max, 0)]`` always holds 0, ``scale = (hi - lo) / (2^b
  - 1)``, ``zero = round(-lo / scale)`` in ``[0, 2^b - 1]``: ``2^b`` levels,
  0.0 exactly on the grid (code ``zero``);
- symmetric (``sym=True``, :func:`symmetric_grid`): with ``M = max|w|``,
  ``scale = 2M / (2^b - 1)`` and ``zero = 2^(b-1)``, so the values are
  ``scale * k`` for ``k = -2^(b-1) .. 2^(b-1) - 1``: ``2^b`` levels, 0.0
  exactly on the grid, one level more below 0 than above (at 2 bits ``{-2s,
  -s, 0, s}`` with ``s = 2M/3``). ``±M`` are ``±(2^b - 1) / 2`` steps, so
  neither is on the grid: ``+M`` is half a step above the top level and
  ``-M`` half-way between the two lowest (at the tie, ``torch.round`` rounds
  half to even). The reference keeps ``lo = 0`` for a group with no negative
  weight (``scale = M / (2^b - 1)``, so the weights above about ``M / 2``
  are clamped); here the range is ``[-M, M]`` always.

Either way every weight lies within half a step (``scale / 2``) of its grid
value: the grid spans the group, and a clamped code is within 0.5 of its
unclamped value. An all-zero group gets the range ``[-1, 1]``, as in the
reference (its weights stay exactly 0).

The functions keep their input's dtype: RTN computes scales, codes and grid
values in float64 and stores the grid values in the weight's dtype (fp32
here), so that rounding ties come only from the data, not from float32 noise;
GPTQ calls them on its fp32 working copy. The grids are then equal up to
float32 rounding, and so are the codes except at a rounding tie, which the two
precisions may break differently: a symmetric grid always has one, ``w = -M``
(-7.5 steps at 4 bits), rounded to -7 or -8 steps, both half a step off.
:func:`grid_violations` checks a stored matrix against these grids without
knowing the scales: it recovers each group's grid from its own values.

Written by hand, not with a library: torchao's ``quantize_`` (0.18.0) swaps
only ``nn.Linear`` weights and leaves GPT-2's ``Conv1D`` untouched, and its
tensor subclasses do not save as a plain transformers folder; the arithmetic
is the few lines below. Its primitives (``choose_qparams_affine`` /
``quantize_affine``) with ``ASYMMETRIC`` mapping and codes 0..2^b-1 gave the
same zero points and codes as the asymmetric grid on random 64 x 256 matrices,
groups of 32, at 2, 3, 4 and 8 bits; its ``SYMMETRIC`` mapping over codes
-2^(b-1)..2^(b-1)-1 is documented with the same scale as the symmetric grid
(``2M / (2^b - 1)``; not rerun here, torchao is not installed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from compfair.architecture import compressible_matrices, weight_out_in
from compfair.compression.structured import state_digest

log = logging.getLogger(__name__)

#: The bit widths the grids here support.
MIN_BITS, MAX_BITS = 2, 8


@dataclass(frozen=True)
class Grids:
    """The grids of every group of one ``[out, in]`` matrix.

    ``scale`` and ``zero`` are float64 ``[out, n_groups]`` (``zero`` holds
    integers); the codes run from ``qmin = 0`` to ``qmax = 2^bits - 1`` for
    both kinds of grid.
    """

    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int | None
    sym: bool

    @property
    def qmin(self) -> int:
        return 0

    @property
    def qmax(self) -> int:
        return 2**self.bits - 1


def check_bits(bits: int) -> None:
    """Raise ``ValueError`` unless ``bits`` is an integer in ``[MIN_BITS, MAX_BITS]``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}")


def symmetric_grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, zero)`` of the symmetric grid of ``w`` over its last dimension.

    ``scale = 2 max|w| / (2^bits - 1)`` and ``zero = 2^(bits-1)`` (see the
    module doc); an all-zero slice gets ``max|w| = 1``. Both have ``w``'s shape
    without the last dimension and ``w``'s dtype.
    """
    top = w.abs().amax(dim=-1)
    top = torch.where(top > 0, top, torch.ones_like(top))
    scale = 2 * top / (2**bits - 1)
    return scale, torch.full_like(scale, 2 ** (bits - 1))


def asymmetric_grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, zero)`` of the asymmetric grid of ``w`` over its last dimension.

    ``lo = min(w_min, 0)``, ``hi = max(w_max, 0)`` (``[-1, 1]`` for an
    all-zero slice), ``scale = (hi - lo) / (2^bits - 1)``, ``zero =
    round(-lo / scale)``. Both have ``w``'s shape without the last dimension.
    """
    lo = w.amin(dim=-1).clamp(max=0.0)
    hi = w.amax(dim=-1).clamp(min=0.0)
    empty = (lo == 0) & (hi == 0)
    lo, hi = lo.masked_fill(empty, -1.0), hi.masked_fill(empty, 1.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, torch.round(-lo / scale)


def fit_grid(w: torch.Tensor, bits: int, sym: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`symmetric_grid` or :func:`asymmetric_grid` of ``w`` (over its last dimension)."""
    return symmetric_grid(w, bits) if sym else asymmetric_grid(w, bits)


def round_to_grid(
    w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> torch.Tensor:
    """The codes ``clamp(round(w / scale) + zero, 0, 2^bits - 1)``, in ``w``'s dtype.

    ``scale`` and ``zero`` broadcast against ``w``.
    """
    return torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)


def grouped(weight: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """``[out, in]`` -> ``[out, n_groups, g]`` (float64), the last group padded by repetition.

    Padding repeats the row's last column, so a padded group's min, max and
    max-abs are those of its real columns. ``g`` is ``min(group_size, in)``.
    """
    if weight.dim() != 2:
        raise ValueError(f"expected an [out, in] matrix, got shape {tuple(weight.shape)}")
    if group_size is not None and group_size < 1:
        raise ValueError(f"group_size must be a positive integer or None, got {group_size}")
    n_in = weight.shape[1]
    g = n_in if group_size is None else min(group_size, n_in)
    pad = -n_in % g
    w = weight.detach().to(torch.float64)
    if pad:
        w = torch.cat([w, w[:, -1:].expand(-1, pad)], dim=1)
    return w.reshape(w.shape[0], -1, g)


def ungrouped(groups: torch.Tensor, n_in: int) -> torch.Tensor:
    """The inverse of :func:`grouped`: ``[out, n_groups, g]`` -> ``[out, n_in]``."""
    return groups.reshape(groups.shape[0], -1)[:, :n_in]


def fit_grids(weight: torch.Tensor, bits: int, group_size: int | None, sym: bool) -> Grids:
    """Each group's scale and zero point for ``weight`` (``[out, in]``); see the module doc."""
    check_bits(bits)
    scale, zero = fit_grid(grouped(weight, group_size), bits, sym)
    return Grids(scale=scale, zero=zero, bits=bits, group_size=group_size, sym=sym)


def _codes(w: torch.Tensor, grids: Grids) -> torch.Tensor:
    return round_to_grid(w, grids.scale[..., None], grids.zero[..., None], grids.bits)


def codes(weight: torch.Tensor, grids: Grids) -> torch.Tensor:
    """The integer codes ``q`` of ``weight`` on ``grids``: int64 ``[out, in]`` in ``[qmin, qmax]``."""
    q = _codes(grouped(weight, grids.group_size), grids)
    return ungrouped(q, weight.shape[1]).to(torch.int64)


def grid_values(q: torch.Tensor, grids: Grids) -> torch.Tensor:
    """``scale * (q - zero)`` for codes ``q`` (``[out, in]``), float64."""
    g = grouped(q, grids.group_size)
    return ungrouped(grids.scale[..., None] * (g - grids.zero[..., None]), q.shape[1])


def steps(grids: Grids, n_in: int) -> torch.Tensor:
    """Each weight's grid step (its group's scale) as float64 ``[out, n_in]``."""
    g = grids.group_size or n_in
    return grids.scale.repeat_interleave(min(g, n_in), dim=1)[:, :n_in]


def fake_quantize(
    weight: torch.Tensor, bits: int, group_size: int | None, sym: bool
) -> tuple[torch.Tensor, Grids, torch.Tensor]:
    """``(grid values in weight's dtype, grids, codes)``: round-to-nearest onto each group's grid.

    Codes are int64 ``[out, in]``; the grid values are :func:`grid_values` of
    them, rounded once to ``weight``'s dtype.
    """
    check_bits(bits)
    w = grouped(weight, group_size)
    scale, zero = fit_grid(w, bits, sym)
    grids = Grids(scale=scale, zero=zero, bits=bits, group_size=group_size, sym=sym)
    q = _codes(w, grids)
    values = ungrouped(scale[..., None] * (q - zero[..., None]), weight.shape[1])
    return values.to(weight.dtype), grids, ungrouped(q, weight.shape[1]).to(torch.int64)


def distinct_per_group(weight: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """Number of distinct values in each group: int64 ``[out, n_groups]``."""
    w = grouped(weight, group_size).sort(dim=2).values  # padding repeats a value: no new one
    return 1 + (w[..., 1:] != w[..., :-1]).sum(dim=2)


def _off_grid(w: torch.Tensor, lo: torch.Tensor, step: torch.Tensor, n_codes: int, tol: float):
    """Per group: whether some value of ``w`` is not ``lo + k * step`` with ``k`` in 0..n_codes."""
    k = (w - lo[..., None]) / step[..., None]
    bad = ((k - k.round()).abs() > tol) | (k.round() < 0) | (k.round() > n_codes)
    return bad.any(dim=2)


def grid_violations(
    weight: torch.Tensor, bits: int, group_size: int | None, sym: bool, tol: float = 1e-3
) -> torch.Tensor:
    """Per group (bool ``[out, n_groups]``): True where the values are not on a ``bits``-bit grid.

    The grid is recovered from the group's own values, which holds for the
    grids :func:`fake_quantize` makes. Symmetric: the weight of largest size
    ``M`` (``(2^b - 1) / 2`` steps) lands on the top level ``2^(b-1) - 1``
    or on ``-(2^(b-1) - 1)`` or ``-2^(b-1)``, so ``max|v|`` is ``2^(b-1) -
    1`` or ``2^(b-1)`` steps; a group passes if the values are ``step * k``,
    ``k`` in ``-2^(b-1) .. 2^(b-1) - 1``, for either step. Asymmetric: ``lo =
    min(v_min, 0)`` is code 0 exactly (``round(-z) + round(z) = 0``), ``hi =
    max(v_max, 0)`` code ``2^b - 1`` (or ``2^b - 2`` at an exact rounding tie,
    also accepted), and 0.0 lies on the grid. ``tol`` is in steps (the stored
    float32 values are about 1e-7 of a step off).
    """
    check_bits(bits)
    w = grouped(weight, group_size)
    if sym:
        half = 2 ** (bits - 1)
        top = w.abs().amax(dim=2)
        bad = torch.ones_like(top, dtype=torch.bool)
        for top_steps in (half - 1, half):
            step = torch.where(top > 0, top / top_steps, torch.ones_like(top))
            bad &= _off_grid(w, -half * step, step, 2**bits - 1, tol)
        return bad
    bad = _off_asymmetric(w, 2**bits - 1, tol)
    if bool(bad.any()):  # an exact rounding tie can leave the top code unused
        bad[bad.clone()] = _off_asymmetric(w[bad][None], 2**bits - 2, tol)[0]
    return bad


def _off_asymmetric(w: torch.Tensor, n_steps: int, tol: float) -> torch.Tensor:
    """Per group: whether ``w`` is off the grid of ``n_steps`` steps from ``min(v_min, 0)``."""
    lo = w.amin(dim=2).clamp(max=0.0)
    hi = w.amax(dim=2).clamp(min=0.0)
    step = torch.where(hi > lo, (hi - lo) / n_steps, torch.ones_like(lo))
    zero = -lo / step
    return _off_grid(w, lo, step, n_steps, tol) | ((zero - zero.round()).abs() > tol)


# --------------------------------------------------------------------------- whole models


def _matrix_report(
    original: torch.Tensor, stored: torch.Tensor, grids: Grids, name: str
) -> tuple[dict[str, Any], float, float]:
    """``(report, squared error, squared norm)`` of one matrix; ``RuntimeError`` past half a step.

    (At most ``2^b`` values a group holds by construction: the codes are
    clamped to the ``2^b`` integers; :func:`verify_model` counts them.)
    """
    err = original.to(torch.float64) - stored.to(torch.float64)
    in_steps = float((err.abs() / steps(grids, original.shape[1])).max())
    # Half a step, plus the float32 rounding of the stored grid value.
    if in_steps > 0.5 + 1e-5:
        raise RuntimeError(f"{name}: a weight is {in_steps:.4f} steps from its grid value")
    err_sq = float(err.square().sum())
    norm_sq = float(original.to(torch.float64).square().sum())
    entry = {
        "rel_error": (err_sq / norm_sq) ** 0.5 if norm_sq else 0.0,
        "max_abs_error": float(err.abs().max()),
        "max_error_in_steps": in_steps,
        "groups_per_row": int(grids.scale.shape[1]),
        "digest": state_digest({name: stored}),
    }
    return entry, err_sq, norm_sq


@torch.no_grad()
def quantize_model(
    model: nn.Module, bits: int, group_size: int | None, sym: bool
) -> dict[str, Any]:
    """Round every compressible matrix of ``model`` onto its grids, in place; return the report.

    The matrices are :func:`compfair.architecture.compressible_matrices` (the
    decoder blocks' ``nn.Linear``/``Conv1D`` weights; embeddings, norms, biases
    and the LM head stay as they are). The stored weights are the grid values
    in the weight's dtype, so any plain transformers load computes with them.
    Each matrix is checked as it is written (every weight within half a step
    of its original; ``RuntimeError`` otherwise).
    The report gives, per matrix (``<module>.weight``), the relative Frobenius
    error, the largest absolute error and the largest error in steps, and the
    digest of the stored ``[out, in]`` values that :func:`verify_model` checks.
    """
    per_matrix: dict[str, dict[str, Any]] = {}
    err_sq = norm_sq = 0.0
    for module_name, module in compressible_matrices(model):
        view = weight_out_in(module)
        original = view.clone()
        stored, grids, _ = fake_quantize(original, bits, group_size, sym)
        view.copy_(stored)  # writes through to Conv1D's [in, out] storage too
        name = f"{module_name}.weight"
        per_matrix[name], e_sq, n_sq = _matrix_report(original, view, grids, name)
        err_sq, norm_sq = err_sq + e_sq, norm_sq + n_sq
    report = {
        "bits": bits,
        "group_size": group_size,
        "scheme": "symmetric" if sym else "asymmetric",
        "n_matrices": len(per_matrix),
        "rel_error": (err_sq / norm_sq) ** 0.5 if norm_sq else 0.0,
        "max_abs_error": max((m["max_abs_error"] for m in per_matrix.values()), default=0.0),
        "max_error_in_steps": max(
            (m["max_error_in_steps"] for m in per_matrix.values()), default=0.0
        ),
        "per_matrix": per_matrix,
    }
    log.info(
        "RTN %d-bit %s, group %s: %d matrices, relative error %.4f",
        bits,
        report["scheme"],
        group_size,
        len(per_matrix),
        report["rel_error"],
    )
    return report


@torch.no_grad()
def verify_model(
    model: nn.Module, bits: int, group_size: int | None, sym: bool, report: Mapping[str, Any]
) -> dict[str, Any]:
    """Check a reloaded quantized model; raise ``RuntimeError`` naming the first matrix that is off.

    Every matrix of the report must be there with the same digest (so the
    half-step check made at quantization time holds for these very values),
    hold at most ``2^bits`` distinct values per group, and have every group on
    a ``bits``-bit grid of the scheme (:func:`grid_violations`, recovered from
    the stored values alone).
    """
    expected = report["per_matrix"]
    found = {f"{n}.weight": m for n, m in compressible_matrices(model)}
    if set(found) != set(expected):
        raise RuntimeError(f"matrices differ from the report: {sorted(set(found) ^ set(expected))}")
    most = 0
    for name, module in found.items():
        view = weight_out_in(module)
        if state_digest({name: view}) != expected[name]["digest"]:
            raise RuntimeError(f"{name}: reloaded weights differ from the quantized ones")
        most = max(most, int(distinct_per_group(view, group_size).max()))
        if most > 2**bits:
            raise RuntimeError(f"{name}: a group holds {most} distinct values, more than 2^{bits}")
        off = grid_violations(view, bits, group_size, sym)
        if bool(off.any()):
            row, group = (int(i) for i in off.nonzero()[0])
            raise RuntimeError(f"{name}: row {row}, group {group} is not on a {bits}-bit grid")
    return {"verified_matrices": len(found), "max_distinct_per_group_after_reload": most}
