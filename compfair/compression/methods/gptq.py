"""GPTQ (Frantar et al. 2022, "Accurate Post-Training Quantization for Generative Pre-trained Transformers").

Weight-only quantization of every attention and MLP matrix to ``bits`` bits
(the level) on a uniform grid per output row and group of ``group_size``
consecutive inputs: ``value = scale * (q - zero)`` with integer
``q in [0, 2^bits - 1]``. The grids are RTN's, fitted and rounded by the same
functions (:func:`compfair.compression.quantize.fit_grid`,
:func:`~compfair.compression.quantize.round_to_grid`): asymmetric (default)
ones span the group's ``[min(w, 0), max(w, 0)]`` with an integer ``zero``;
symmetric ones (``sym: true``) are the reference's, ``scale = 2 max|w| /
(2^bits - 1)`` and ``zero = 2^(bits-1)``, levels ``-2^(bits-1) .. 2^(bits-1)
- 1`` steps (details in :mod:`compfair.compression.quantize`). GPTQ calls them
on its fp32 working copy, RTN in fp64: with nothing to compensate the two give
the same values but for a weight at an exact rounding tie.

Columns are quantized one at a time and each column's rounding error is
compensated on the columns not yet quantized through the inverse of the layer
Hessian ``H = 2 X^T X / n`` on the calibration inputs
(:mod:`compfair.compression.obs`; damping ``percdamp``, lazy updates per
``blocksize`` columns). Inputs that never fired get weight 0 first, as in the
reference. When each group's grid is fitted:

- one group per row (``group_size`` null, -1 or at least ``in``): up front,
  from the unquantized weights (after the dead inputs are zeroed; the
  reference fits this grid before zeroing them);
- smaller groups: when the sweep reaches the group's first column, from the
  group's columns as the sweep then has them, i.e. with the errors of *every*
  earlier column compensated (:meth:`compfair.compression.obs.Sweep.current`
  adds the pending lazy update). The reference (``static_groups=False``)
  reads the group from its matrix ``W``, which holds the updates of earlier
  *blocks* only, so its grids depend on ``blocksize`` when a group starts
  inside a block. The two agree when ``blocksize`` divides ``group_size``
  (the defaults, 128 and 128); otherwise this is the reference with
  ``blocksize`` 1, up to float rounding;
- with ``act_order`` (columns in order of decreasing ``H_jj``): up front,
  from the unquantized weights, one grid per run of ``group_size``
  consecutive inputs: the reference's ``act_order`` with
  ``static_groups=True``. There is no ``static_groups`` option: grids are
  fitted on the fly without ``act_order`` and up front with it (on the fly,
  ``act_order``'s groups would be runs of columns in Hessian order, not of
  consecutive inputs).

Blocks of the model go in order, each calibrated on the outputs of the
already quantized blocks.

The model is saved *dequantized*, in fp32: it loads with plain
``from_pretrained`` and generates with exactly the weights the quantized model
computes with. The report gives per matrix the relative output error
``||(W - Q) X|| / ||W X||`` on the calibration inputs for GPTQ and for
round-to-nearest on the same grid definition, and the relative weight error.
The check after reloading: every group of every row holds at most ``2^bits``
distinct values, all on one grid through 0 of at most ``2^bits`` points (the
step is recovered from the values themselves).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compfair.compression import CompressionMethod, Context, register_method
from compfair.compression.methods.sparsegpt import OBS_OPTIONS
from compfair.compression.methods.wanda import calibration_summary, need_calibration

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compfair.compression.calibrate import LayerInputs
    from compfair.compression.obs import Sweep

log = logging.getLogger(__name__)

#: Bit widths GPTQ accepts.
BITS = range(2, 9)
#: How far (in grid steps) a reloaded value may lie from its grid point: fp32 rounding only.
GRID_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- the grid (private)


def _group_size(value: Any, cols: int) -> int:
    """The effective group size: ``None`` or ``-1`` (or more than ``cols``) is the whole row."""
    return cols if value in (None, -1) or int(value) >= cols else int(value)


def _quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """``scale * (round_to_grid(x) - zero)``; ``x`` is a column ``[rows]`` or ``[rows, k]``."""
    from compfair.compression.quantize import round_to_grid

    if x.dim() == 2:
        scale, zero = scale.unsqueeze(1), zero.unsqueeze(1)
    return scale * (round_to_grid(x, scale, zero, bits) - zero)


def rtn(weight: torch.Tensor, bits: int, group_size: Any, sym: bool) -> torch.Tensor:
    """Round-to-nearest on the grids fitted to ``weight``, per row and group of columns, in fp32.

    The same grids as the ``rtn`` method's; this one computes in fp32, as GPTQ
    does, so that the report compares the two at one precision.
    """
    import torch

    from compfair.compression.quantize import fit_grid

    gs = _group_size(group_size, weight.shape[1])
    out = torch.empty_like(weight, dtype=torch.float32)
    for start in range(0, weight.shape[1], gs):
        part = weight[:, start : start + gs].float()
        out[:, start : start + gs] = _quantize(part, *fit_grid(part, bits, sym), bits)
    return out


class GridRule:
    """GPTQ's column rule: round each column onto its group's grid.

    ``static`` (``(scales, zeros)``, each ``[rows, n_groups]``) fixes every
    group's grid up front; without it a group's grid is fitted when the sweep
    reaches the group's first column, to the group's columns with every
    earlier column's error compensated (:meth:`Sweep.current`). ``groups[j]`` is the group of the column
    the sweep processes ``j``-th (the permutation of ``act_order``).
    """

    def __init__(
        self, bits: int, sym: bool, group_size: int, groups: list[int], static: tuple | None
    ) -> None:
        self.bits, self.sym, self.group_size = bits, sym, group_size
        self.groups, self.static = groups, static
        self.scale = self.zero = None

    def begin_block(self, sweep: Sweep) -> None:
        pass

    def column(self, sweep: Sweep, j: int, w: torch.Tensor) -> torch.Tensor:
        if self.static is not None:
            g = self.groups[j]
            scale, zero = self.static[0][:, g], self.static[1][:, g]
        else:
            if j % self.group_size == 0:
                from compfair.compression.quantize import fit_grid

                current = sweep.current(j, j + self.group_size)
                self.scale, self.zero = fit_grid(current, self.bits, self.sym)
            scale, zero = self.scale, self.zero
        return _quantize(w, scale, zero, self.bits)


def _static_grids(weight: torch.Tensor, bits: int, gs: int, sym: bool) -> tuple:
    """``(scales, zeros)``, each ``[rows, n_groups]``: the grids of ``weight``'s groups of ``gs``."""
    import torch

    from compfair.compression.quantize import fit_grid

    grids = [fit_grid(weight[:, s : s + gs], bits, sym) for s in range(0, weight.shape[1], gs)]
    return torch.stack([g[0] for g in grids], 1), torch.stack([g[1] for g in grids], 1)


def gptq_quantize(
    weight: torch.Tensor, hessian: torch.Tensor, bits: int, opts: Mapping[str, Any]
) -> torch.Tensor:
    """The GPTQ-quantized (dequantized, fp32) copy of ``weight`` (``[rows, cols]``).

    ``opts``: ``group_size``, ``sym``, ``act_order``, ``percdamp``, ``blocksize``.
    Inputs that never fired (``H_jj == 0``) get weight 0 before quantizing.
    """
    import torch

    from compfair.compression.obs import inverse_hessian_factor, obs_sweep

    work = weight.to(torch.float32).clone()
    cols = work.shape[1]
    gs = _group_size(opts["group_size"], cols)
    sym = bool(opts["sym"])
    dead = torch.diagonal(hessian) == 0
    work[:, dead] = 0.0
    perm = torch.arange(cols)
    static = None
    # Per-row grids, or act_order (the reference's static_groups): fitted to the unquantized weights.
    if gs == cols or opts["act_order"]:
        static = _static_grids(work, bits, gs, sym)
    if opts["act_order"]:
        perm = torch.argsort(torch.diagonal(hessian), descending=True, stable=True).cpu()
        hessian = hessian[perm][:, perm]
        work = work[:, perm]
    upper, _ = inverse_hessian_factor(hessian, float(opts["percdamp"]))
    rule = GridRule(bits, sym, gs, (perm // gs).tolist(), static)
    obs_sweep(work, upper, rule, int(opts["blocksize"]))
    return work[:, torch.argsort(perm)] if opts["act_order"] else work


# --------------------------------------------------------------------------- checking a grid


def _on_one_grid(ordered: torch.Tensor, bits: int) -> torch.Tensor:
    """Per row of ``ordered`` (``[groups, k]``, sorted): do its values lie on one grid through 0?

    Such a grid is ``step * k`` for integers ``k`` spanning at most ``2^bits - 1``
    steps, 0 included (GPTQ's ``scale * (q - zero)`` with integer ``zero`` in
    ``[0, 2^bits - 1]``). The step is recovered from the values: the smallest
    gap or non-zero magnitude, refined over the span; rows where that fails are
    tried again with the real GCD of the magnitudes (no two neighbouring grid
    points used, and no point next to 0).
    """
    import torch

    inf = torch.full_like(ordered, math.inf)
    gaps = ordered.diff(dim=1)
    smallest = torch.where(ordered != 0, ordered.abs(), inf).min(dim=1).values
    if gaps.shape[1]:
        smallest = torch.minimum(
            smallest, torch.where(gaps > 0, gaps, inf[:, 1:]).min(dim=1).values
        )
    span = ordered[:, -1].clamp(min=0) - ordered[:, 0].clamp(max=0)
    zeros = torch.isinf(smallest)  # every value is 0
    steps = torch.where(zeros, torch.ones_like(span), torch.round(span / smallest).clamp(min=1))
    step = torch.where(zeros, torch.ones_like(span), span / steps)
    units = ordered / step.unsqueeze(1)
    fits = ((units - units.round()).abs() <= GRID_TOLERANCE).all(dim=1) & (steps <= 2**bits - 1)
    fits |= zeros
    for row in torch.nonzero(~fits).flatten().tolist():
        fits[row] = _fits_by_gcd(ordered[row], bits)
    return fits


def _fits_by_gcd(ordered: torch.Tensor, bits: int) -> bool:
    """Whether the values lie on one grid through 0 whose step is the real GCD of their sizes."""
    sizes = sorted({abs(v) for v in ordered.tolist() if v != 0})
    if not sizes:
        return True
    tol = GRID_TOLERANCE * sizes[0] / 2**bits
    step = sizes[0]
    for size in sizes[1:]:  # Euclid on reals: a near-multiple leaves a remainder below tol
        a, b = size, step
        while b > tol:
            a, b = b, math.fmod(a, b)
        step = a
    units = [v / step for v in ordered.tolist()]
    on_grid = all(abs(u - round(u)) <= 10 * GRID_TOLERANCE for u in units)
    return on_grid and round(max(units[-1], 0) - min(units[0], 0)) <= 2**bits - 1


def check_grid(weight: torch.Tensor, bits: int, group_size: Any, name: str) -> dict[str, int]:
    """Raise ``RuntimeError`` naming ``name`` if a group of a row is off a ``bits``-bit grid.

    ``weight``: the ``[out, in]`` view; groups are ``group_size`` consecutive
    columns (the last may be shorter). Returns the most distinct values seen in
    one group.
    """
    import torch

    gs = _group_size(group_size, weight.shape[1])
    most = 0
    for start in range(0, weight.shape[1], gs):
        part = weight[:, start : start + gs].float()
        ordered = part.sort(dim=1).values
        distinct = 1 + (ordered.diff(dim=1) != 0).sum(dim=1)
        most = max(most, int(distinct.max()))
        if int(distinct.max()) > 2**bits:
            raise RuntimeError(
                f"{name}: a group of columns {start}..{start + part.shape[1] - 1} holds "
                f"{int(distinct.max())} distinct values, more than 2^{bits}"
            )
        off = torch.nonzero(~_on_one_grid(ordered, bits)).flatten()
        if off.numel():
            raise RuntimeError(
                f"{name}: rows {off[:5].tolist()} of columns {start}..{start + part.shape[1] - 1} "
                f"are not on a {bits}-bit grid through 0"
            )
    return {"max_distinct_per_group": most}


# --------------------------------------------------------------------------- the method


@register_method("gptq")
class Gptq(CompressionMethod):
    paper = "Frantar et al. 2023 (GPTQ)"
    family = "quantization"
    level_kind = "integer"
    needs_calibration = True
    options_schema = {
        "properties": {
            "group_size": {
                "anyOf": [{"type": "null"}, {"const": -1}, {"type": "integer", "minimum": 1}],
                "default": 128,
                "description": "Inputs sharing one grid per output row; null or -1: the whole row.",
            },
            "sym": {"type": "boolean", "default": False, "description": "Symmetric grids."},
            "act_order": {
                "type": "boolean",
                "default": False,
                "description": "Quantize columns in order of decreasing Hessian diagonal "
                "(grids then fixed up front from the unquantized weights).",
            },
            **OBS_OPTIONS,
        }
    }
    summary = "GPTQ: weight-only quantization with inverse-Hessian error compensation"

    def check_level(self, level: Any) -> str | None:
        if int(level) not in BITS:
            return f"GPTQ takes {BITS.start} to {BITS.stop - 1} bits, got {level}"
        return None

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.calibrate import compress_sequentially

        opts = {**self.defaults(), **options}
        bits = int(level)
        calibration = need_calibration(context, self.name)

        def quantize(name: str, module: nn.Module, stats: LayerInputs) -> dict:
            return _quantize_matrix(module, stats, bits, opts)

        per_matrix = compress_sequentially(model, calibration, "hessian", quantize)
        mean = {
            key: sum(r[key] for r in per_matrix.values()) / len(per_matrix)
            for key in ("output_rel", "rtn_output_rel", "weight_rel")
        }
        log.info(
            "gptq %d bits: mean relative output error %.4f (round-to-nearest %.4f)",
            bits,
            mean["output_rel"],
            mean["rtn_output_rel"],
        )
        return {
            "bits": bits,
            "group_size": opts["group_size"],
            "sym": bool(opts["sym"]),
            "act_order": bool(opts["act_order"]),
            "storage": "dequantized fp32",
            "mean": mean,
            "per_matrix": per_matrix,
            "calibration": calibration_summary(calibration),
        }

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.architecture import compressible_matrices, weight_out_in

        opts = {**self.defaults(), **options}
        most = 0
        for name, module in compressible_matrices(model):
            checked = check_grid(weight_out_in(module), int(level), opts["group_size"], name)
            most = max(most, checked["max_distinct_per_group"])
        return {"max_distinct_per_group_after_reload": most}


def _quantize_matrix(
    module: nn.Module, stats: LayerInputs, bits: int, opts: Mapping[str, Any]
) -> dict[str, Any]:
    """GPTQ ``module`` in place; its bits, group size and errors against round-to-nearest."""
    import torch

    from compfair.architecture import weight_out_in
    from compfair.compression.obs import output_errors

    view = weight_out_in(module)
    original = view.to(torch.float32).clone()
    hessian = stats.hessian()
    quantized = gptq_quantize(original, hessian, bits, opts)
    view.copy_(quantized.to(view.dtype))
    nearest = rtn(original, bits, opts["group_size"], bool(opts["sym"]))
    gptq_err, rtn_err = output_errors(original, [quantized, nearest], hessian)
    return {
        "bits": bits,
        "group_size": _group_size(opts["group_size"], original.shape[1]),
        **gptq_err,
        "rtn_output_rel": rtn_err["output_rel"],
        "rtn_output_sq": rtn_err["output_sq"],
        "rtn_weight_rel": rtn_err["weight_rel"],
    }
