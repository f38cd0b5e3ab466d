"""Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models").

Each weight is scored ``|W_ij| * ||X_j||_2``: its magnitude times the norm of
the input feature it reads, over the calibration tokens of that layer. Every
output row of every attention and MLP matrix loses exactly its
``round(sparsity * in_features)`` lowest-scored weights (Wanda's default
comparison group: per output, so all outputs keep the same number of inputs;
ties go to the first columns). Blocks are pruned in order, each measured on
the outputs of the already pruned blocks before it, as in the reference code
(:func:`compfair.compression.calibrate.compress_sequentially`). No weight is
updated: Wanda only masks.

Measured sparsity: each matrix has ``rows * round(sparsity * in_features)``
zeros, so the whole model's share can differ from the requested one by up to
``0.5 / in_features``; the report gives both (``requested``, ``target``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compfair.compression import CompressionMethod, Context, register_method
from compfair.compression.methods.magnitude import SPARSITY_OPTIONS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compfair.compression.calibrate import LayerInputs

log = logging.getLogger(__name__)


def wanda_scores(weight: torch.Tensor, column_norms: torch.Tensor) -> torch.Tensor:
    """``|W_ij| * ||X_j||_2`` for an ``[out, in]`` weight and ``[in]`` input norms (fp32)."""
    return weight.abs().float() * column_norms.float().unsqueeze(0)


def prune_rows(weight: torch.Tensor, scores: torch.Tensor, sparsity: float) -> int:
    """Zero the ``round(sparsity * in)`` lowest-scored entries of every row of ``weight``.

    ``weight`` is an ``[out, in]`` view (written in place); ties go to the
    first columns. Returns the number of entries zeroed per row.
    """
    import torch

    k = round(sparsity * weight.shape[1])
    if k > 0:
        order = torch.sort(scores, dim=1, stable=True).indices[:, :k]
        weight.scatter_(1, order, 0.0)
    return k


def calibration_summary(calibration: Any) -> dict[str, int]:
    """``n_sequences``, ``seq_len`` and ``tokens`` of a ``[n, seq_len]`` calibration tensor."""
    n, seq_len = (int(d) for d in calibration.shape)
    return {"n_sequences": n, "seq_len": seq_len, "tokens": n * seq_len}


def need_calibration(context: Context, method: str) -> Any:
    """``context.calibration``, or ``RuntimeError`` naming ``method`` when there is none."""
    if context.calibration is None:
        raise RuntimeError(f"method {method!r} needs calibration sequences (calibration.*)")
    return context.calibration


def row_sparsity_report(model: Any, sparsity: float, per_row: Mapping[str, int]) -> dict:
    """The report of a per-row pruning: requested, target and measured shares, per matrix."""
    from compfair.architecture import compressible_matrices, weight_out_in
    from compfair.models import measure_sparsity, per_matrix_sparsity

    matrices = compressible_matrices(model)
    n_total = sum(weight_out_in(m).numel() for _, m in matrices)
    n_target = sum(weight_out_in(m).shape[0] * per_row[name] for name, m in matrices)
    return {
        "requested": float(sparsity),
        "target": n_target / n_total,
        "measured": measure_sparsity(model),
        "n_pruned": int(n_target),
        "n_total": int(n_total),
        "scope": "row",
        "per_matrix": per_matrix_sparsity(model),
    }


def check_row_sparsity(model: Any, sparsity: float, tolerance: float) -> dict[str, Any]:
    """Raise ``RuntimeError`` unless every row of every matrix has its ``round(s * in)`` zeros.

    Also checks the overall share against the target (``rows * round(s * in)``
    per matrix) within ``tolerance``. Returns ``measured_after_reload``.
    """
    from compfair.architecture import compressible_matrices, weight_out_in
    from compfair.models import measure_sparsity

    n_target = n_total = 0
    for name, module in compressible_matrices(model):
        w = weight_out_in(module)
        k = round(sparsity * w.shape[1])
        zeros = (w == 0).sum(dim=1)
        short = int((zeros < k).sum())
        if short:
            raise RuntimeError(
                f"{name}: {short} of {w.shape[0]} rows have fewer than {k} zeros "
                f"(fewest: {int(zeros.min())})"
            )
        n_target += k * w.shape[0]
        n_total += w.numel()
    measured = measure_sparsity(model)
    if abs(measured - n_target / n_total) > tolerance:
        raise RuntimeError(
            f"measured sparsity {measured:.4f} is more than {tolerance} from the target "
            f"{n_target / n_total:.4f} (requested {sparsity})"
        )
    return {"measured_after_reload": measured}


@register_method("wanda")
class Wanda(CompressionMethod):
    paper = "Sun et al. 2023"
    family = "pruning"
    level_kind = "fraction"
    needs_calibration = True
    options_schema = SPARSITY_OPTIONS
    summary = (
        "Wanda: per output row, prune the lowest |weight| x input-norm (calibrated, sequential)"
    )

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.architecture import weight_out_in
        from compfair.compression.calibrate import compress_sequentially

        sparsity = float(level)
        calibration = need_calibration(context, self.name)
        per_row: dict[str, int] = {}

        def prune(name: str, module: nn.Module, stats: LayerInputs) -> dict:
            w = weight_out_in(module)
            per_row[name] = prune_rows(w, wanda_scores(w, stats.column_norms()), sparsity)
            return {"zeros_per_row": per_row[name], "in_features": int(w.shape[1])}

        compress_sequentially(model, calibration, "norms", prune)
        report = row_sparsity_report(model, sparsity, per_row)
        report["calibration"] = calibration_summary(calibration)
        log.info("wanda: requested %.4f, measured %.4f", sparsity, report["measured"])
        return report

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        tolerance = {**self.defaults(), **options}["tolerance"]
        return check_row_sparsity(model, float(level), float(tolerance))
