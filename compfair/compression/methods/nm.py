"""N:M semi-structured sparsity: in every group of M consecutive inputs of each output, N zeros.

Convention: a level ``"N:M"`` names the **zeros**, as the Wanda and SparseGPT
code does (``prune_n`` of every ``prune_m``): ``"2:4"`` prunes 2 of every 4
weights and keeps 2, ``"4:8"`` prunes 4 of every 8. (NVIDIA writes the kept
count first; for 2:4 and 4:8 both readings are the same 50 % pattern, but a
``"1:4"`` here means 1 zero and 3 kept, 25 % sparsity.) Groups are M
consecutive columns of the ``[out, in]`` view (the input dimension, the one
sparse tensor cores compress), aligned at column 0, so every matrix's
``in_features`` must be a multiple of M; a matrix that is not refuses the
whole model before anything is pruned, naming the matrix.

Exactly N weights of every group are pruned: ``magnitude_nm`` the N smallest
``|w|``, ``wanda_nm`` the N lowest Wanda scores ``|w| * ||x_j||`` (calibrated,
sequential over blocks), ``sparsegpt_nm`` the N lowest ``w^2 / [H^-1]_jj`` chosen
as SparseGPT's sweep reaches each group, with the inverse-Hessian update of the
kept weights. Ties go to the first positions. The check after reloading: every
group holds at most M-N non-zeros (at least N zeros; more only where the
parent's weights already were exactly zero, which the report counts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compfair.compression import CompressionMethod, Context, register_method
from compfair.compression.methods.sparsegpt import OBS_OPTIONS, obs_compress
from compfair.compression.methods.wanda import calibration_summary, need_calibration

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compfair.compression.calibrate import LayerInputs

log = logging.getLogger(__name__)


def parse_level(level: Any) -> tuple[int, int]:
    """``"2:4"`` -> ``(2, 4)``: N zeros in every M; ``ValueError`` unless ``0 < N < M``."""
    try:
        n, m = (int(part) for part in str(level).split(":"))
    except ValueError as exc:
        raise ValueError(f"{level!r} is not an N:M pattern such as '2:4'") from exc
    if not 0 < n < m:
        raise ValueError(f"{level!r}: need 0 < N < M")
    return n, m


def check_divisible(model: Any, m: int) -> None:
    """Raise ``ValueError`` naming every matrix whose ``in_features`` is not a multiple of ``m``."""
    from compfair.architecture import compressible_matrices, describe, in_features

    bad = [
        f"{name} ({in_features(module)} inputs)"
        for name, module in compressible_matrices(model)
        if in_features(module) % m
    ]
    if bad:
        raise ValueError(
            f"{describe(model)}: N:M groups of {m} inputs do not tile "
            f"{', '.join(bad[:5])}{' and more' if len(bad) > 5 else ''}"
        )


def prune_groups(weight: torch.Tensor, scores: torch.Tensor, n: int, m: int) -> None:
    """Zero, in the ``[out, in]`` view ``weight``, the ``n`` lowest scores of every group of ``m``."""
    from compfair.compression.obs import row_group_mask

    weight.masked_fill_(row_group_mask(scores, n, m), 0.0)


def group_zeros(weight: torch.Tensor, m: int) -> torch.Tensor:
    """Zeros per group of ``m`` consecutive columns of an ``[out, in]`` weight: ``[out, in / m]``."""
    rows, cols = weight.shape
    return (weight == 0).reshape(rows, cols // m, m).sum(dim=-1)


def check_nm(model: Any, n: int, m: int) -> dict[str, Any]:
    """Raise ``RuntimeError`` unless every group of every matrix has at least ``n`` zeros.

    Returns ``measured_after_reload`` (share of zeros), ``n_groups`` and
    ``groups_with_extra_zeros`` (groups with more than ``n``).
    """
    from compfair.architecture import compressible_matrices, weight_out_in
    from compfair.models import measure_sparsity

    check_divisible(model, m)
    n_groups = extra = 0
    for name, module in compressible_matrices(model):
        zeros = group_zeros(weight_out_in(module), m)
        short = int((zeros < n).sum())
        if short:
            raise RuntimeError(
                f"{name}: {short} of {zeros.numel()} groups of {m} have more than {m - n} "
                f"non-zeros (pattern {n}:{m}, N zeros per M)"
            )
        n_groups += zeros.numel()
        extra += int((zeros > n).sum())
    return {
        "measured_after_reload": measure_sparsity(model),
        "n_groups": n_groups,
        "groups_with_extra_zeros": extra,
    }


class _NmPruning(CompressionMethod):
    """N:M pruning; subclasses say how each matrix is pruned."""

    family = "pruning"
    level_kind = "n_of_m"
    options_schema: Mapping[str, Any] = {"properties": {}}

    def check_level(self, level: Any) -> str | None:
        try:
            parse_level(level)
        except ValueError as exc:
            return str(exc)
        return None

    def prune_all(self, model: Any, n: int, m: int, opts: dict, context: Context) -> dict:
        raise NotImplementedError

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.models import measure_sparsity, per_matrix_sparsity

        n, m = parse_level(level)
        check_divisible(model, m)
        per_matrix = self.prune_all(model, n, m, {**self.defaults(), **options}, context)
        sparsity = per_matrix_sparsity(model)
        report = {
            "pattern": f"{n}:{m}",
            "convention": "N zeros in every M consecutive inputs of each output",
            "requested": n / m,
            "measured": measure_sparsity(model),
            "per_matrix": {
                k: {**v, "sparsity": sparsity[f"{k}.weight"]} for k, v in per_matrix.items()
            },
        }
        if context.calibration is not None and self.needs_calibration:
            report["calibration"] = calibration_summary(context.calibration)
        log.info("%s %d:%d: measured sparsity %.4f", self.name, n, m, report["measured"])
        return report

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        n, m = parse_level(level)
        return check_nm(model, n, m)


@register_method("magnitude_nm")
class MagnitudeNm(_NmPruning):
    paper = "Mishra et al. 2021 (NVIDIA 2:4); Sun et al. 2023"
    summary = "N:M semi-structured magnitude pruning (N smallest |w| of every M inputs)"

    def prune_all(self, model: Any, n: int, m: int, opts: dict, context: Context) -> dict:
        from compfair.architecture import compressible_matrices, weight_out_in

        out = {}
        for name, module in compressible_matrices(model):
            w = weight_out_in(module)
            prune_groups(w, w.abs(), n, m)
            out[name] = {}
        return out


@register_method("wanda_nm")
class WandaNm(_NmPruning):
    paper = "Sun et al. 2023 (Wanda)"
    needs_calibration = True
    summary = "N:M semi-structured Wanda pruning (N lowest |w| x input-norm of every M inputs)"

    def prune_all(self, model: Any, n: int, m: int, opts: dict, context: Context) -> dict:
        from compfair.architecture import weight_out_in
        from compfair.compression.calibrate import compress_sequentially
        from compfair.compression.methods.wanda import wanda_scores

        def prune(name: str, module: nn.Module, stats: LayerInputs) -> dict:
            w = weight_out_in(module)
            prune_groups(w, wanda_scores(w, stats.column_norms()), n, m)
            return {}

        return compress_sequentially(model, need_calibration(context, self.name), "norms", prune)


@register_method("sparsegpt_nm")
class SparseGptNm(_NmPruning):
    paper = "Frantar & Alistarh 2023 (SparseGPT)"
    needs_calibration = True
    options_schema = {"properties": dict(OBS_OPTIONS)}
    summary = "N:M semi-structured SparseGPT pruning with the inverse-Hessian weight update"

    def prune_all(self, model: Any, n: int, m: int, opts: dict, context: Context) -> dict:
        from compfair.compression.calibrate import compress_sequentially
        from compfair.compression.obs import NmMaskRule

        def prune(name: str, module: nn.Module, stats: LayerInputs) -> dict:
            return obs_compress(module, stats, NmMaskRule(n, m), opts)

        return compress_sequentially(model, need_calibration(context, self.name), "hessian", prune)
