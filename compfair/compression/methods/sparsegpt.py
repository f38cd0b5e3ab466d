"""SparseGPT (Frantar & Alistarh 2023, "Massive Language Models Can Be Accurately Pruned in One-Shot").

Layer-wise optimal brain surgery: every attention and MLP matrix is pruned
column by column and the error of each pruned column is compensated by
updating the columns not yet processed, using the inverse of the layer's
Hessian ``H = 2 X^T X / n`` on the calibration inputs (damped by ``percdamp``
times its mean diagonal; see :mod:`compfair.compression.obs`). The mask is
chosen adaptively per block of ``blocksize`` columns, from the weights as the
earlier blocks' updates left them: in each block exactly
``round(sparsity * rows * block_cols)`` weights with the lowest
``w^2 / [H^-1]_jj`` go (the reference prunes one more on ties). Blocks of the
model are pruned in order on the outputs of the already pruned blocks.

Unlike magnitude and Wanda pruning the kept weights change. The report gives,
per matrix, the relative output error ``||(W - W') X|| / ||W X||`` on the
calibration inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compfair.compression import CompressionMethod, Context, register_method
from compfair.compression.methods.magnitude import SPARSITY_OPTIONS
from compfair.compression.methods.wanda import calibration_summary, need_calibration

if TYPE_CHECKING:
    from torch import nn

    from compfair.compression.calibrate import LayerInputs

log = logging.getLogger(__name__)

#: The options of the OBS methods (SparseGPT, GPTQ): damping and the lazy-update block.
OBS_OPTIONS = {
    "percdamp": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 0.01,
        "description": "Damping added to the Hessian's diagonal, as a share of its mean diagonal.",
    },
    "blocksize": {
        "type": "integer",
        "minimum": 1,
        "default": 128,
        "description": "Columns updated eagerly together; only speed depends on it (and, for "
        "SparseGPT, the span of each adaptive mask).",
    },
}


def obs_compress(
    module: nn.Module, stats: LayerInputs, rule: Any, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Run the OBS sweep of ``rule`` on ``module``'s ``[out, in]`` weight, in place.

    Returns the matrix's share of zeros and its output error
    (:func:`compfair.compression.obs.output_error`).
    """
    import torch

    from compfair.architecture import weight_out_in
    from compfair.compression.obs import output_error, sparsegpt

    view = weight_out_in(module)
    original = view.to(torch.float32).clone()
    hessian = stats.hessian()
    new = sparsegpt(original, hessian, rule, int(options["blocksize"]), float(options["percdamp"]))
    view.copy_(new.to(view.dtype))
    return {
        "sparsity": float((view == 0).sum()) / view.numel(),
        **output_error(original, view, hessian),
    }


@register_method("sparsegpt")
class SparseGPT(CompressionMethod):
    paper = "Frantar & Alistarh 2023"
    family = "pruning"
    level_kind = "fraction"
    needs_calibration = True
    options_schema = {
        "properties": {**SPARSITY_OPTIONS["properties"], **OBS_OPTIONS},
    }
    summary = "SparseGPT: one-shot unstructured pruning with the inverse-Hessian weight update"

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.calibrate import compress_sequentially
        from compfair.compression.obs import BlockMaskRule
        from compfair.models import measure_sparsity

        opts = {**self.defaults(), **options}
        sparsity = float(level)
        calibration = need_calibration(context, self.name)

        def prune(name: str, module: nn.Module, stats: LayerInputs) -> dict:
            rule = BlockMaskRule(sparsity)
            return {**obs_compress(module, stats, rule, opts), "n_pruned": rule.n_pruned}

        per_matrix = compress_sequentially(model, calibration, "hessian", prune)
        report = {
            "requested": sparsity,
            "measured": measure_sparsity(model),
            "n_pruned": int(sum(r["n_pruned"] for r in per_matrix.values())),
            "scope": "column_block",
            "per_matrix": per_matrix,
            "calibration": calibration_summary(calibration),
        }
        log.info("sparsegpt: requested %.4f, measured %.4f", sparsity, report["measured"])
        return report

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.compression.sparsity import check_sparsity

        tolerance = float({**self.defaults(), **options}["tolerance"])
        check_pruned_counts(model, report["per_matrix"])
        return check_sparsity(model, float(level), tolerance, "global")


def check_pruned_counts(model: Any, per_matrix: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ``RuntimeError`` if a matrix has fewer zeros than the ``n_pruned`` its report gives."""
    from compfair.architecture import compressible_matrices, weight_out_in

    for name, module in compressible_matrices(model):
        zeros = int((weight_out_in(module) == 0).sum())
        if zeros < int(per_matrix[name]["n_pruned"]):
            raise RuntimeError(
                f"{name}: {zeros} zeros after reload, fewer than the "
                f"{per_matrix[name]['n_pruned']} weights pruned"
            )
