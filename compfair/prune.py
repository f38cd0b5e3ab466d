"""Global unstructured magnitude pruning of the attention and MLP matrices.

All prunable matrices (:func:`compfair.models.prunable_weights`: ``Conv1D``
for GPT-2, ``nn.Linear`` for Llama) are ranked together by ``|w|`` and the
smallest ``round(sparsity * total)`` entries are set to zero in place. The
result is a plain model (no masks, no hooks), so the pruned folder loads like
any other; the sparsity is measured on the reloaded folder before it is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from compfair import io
from compfair.io import InputError, PathLike
from compfair.models import load_model, prunable_weights, read_provenance, write_model_folder

log = logging.getLogger(__name__)


def measure_sparsity(model: PreTrainedModel) -> float:
    """Share of exact zeros over all prunable matrices together."""
    zeros = total = 0
    for _, weight in prunable_weights(model):
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total if total else 0.0


@torch.no_grad()
def global_magnitude_prune(model: PreTrainedModel, sparsity: float) -> dict[str, Any]:
    """Zero the ``round(sparsity * n_total)`` smallest-magnitude prunable weights, in place.

    Ranking is global over all prunable matrices. Ties at the threshold are
    broken by position (matrix order of :func:`prunable_weights`, then
    row-major order inside a matrix), so exactly that many entries are pruned.

    Returns ``{"requested", "measured", "n_pruned", "n_total", "threshold",
    "per_matrix": {name: sparsity}}``; ``measured`` counts all exact zeros,
    so it can exceed ``requested`` only if weights were already zero.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise InputError(f"sparsity must be in [0, 1], got {sparsity}")
    weights = prunable_weights(model)
    n_total = sum(w.numel() for _, w in weights)
    n_prune = round(sparsity * n_total)
    threshold = 0.0
    if n_prune > 0:
        magnitudes = torch.cat([w.detach().abs().flatten() for _, w in weights])  # [n_total]
        threshold = float(torch.kthvalue(magnitudes, n_prune).values)
        n_below = int((magnitudes < threshold).sum())
        del magnitudes
        ties_left = n_prune - n_below  # entries equal to the threshold still to prune
        for _, weight in weights:
            mags = weight.abs()
            mask = (mags < threshold).contiguous()
            if ties_left > 0:
                tie_idx = torch.nonzero((mags == threshold).flatten()).squeeze(1)[:ties_left]
                mask.view(-1)[tie_idx] = True
                ties_left -= tie_idx.numel()
            weight.masked_fill_(mask, 0.0)
        assert ties_left == 0, "tie-breaking left entries unpruned"
    report = {
        "requested": float(sparsity),
        "measured": measure_sparsity(model),
        "n_pruned": int(n_prune),
        "n_total": int(n_total),
        "threshold": threshold,
        "per_matrix": {
            name: float((w == 0).sum()) / w.numel() for name, w in weights
        },
    }
    log.info(
        "pruned %d of %d weights (requested %.4f, measured %.4f, |w| threshold %.3g)",
        n_prune, n_total, sparsity, report["measured"], threshold,
    )
    return report


def prune_model(
    in_dir: PathLike, out_dir: PathLike, sparsity: float, tolerance: float = 0.005
) -> dict[str, Any]:
    """Prune the model folder ``in_dir`` to ``sparsity`` and save it to ``out_dir``.

    The pruned folder is written to a temporary sibling, reloaded from disk and
    its sparsity measured again; if either measurement is more than
    ``tolerance`` from ``sparsity`` a ``RuntimeError`` is raised and
    ``out_dir`` is not created. ``out_dir`` also holds ``pruning.json`` (the
    report of :func:`global_magnitude_prune` plus ``measured_after_reload``).
    """
    model, tokenizer = load_model(in_dir)
    report = global_magnitude_prune(model, sparsity)
    if abs(report["measured"] - sparsity) > tolerance:
        raise RuntimeError(
            f"pruning {in_dir}: measured sparsity {report['measured']:.4f} is more than "
            f"{tolerance} from the requested {sparsity}"
        )
    prov = io.provenance(
        step="prune_model",
        parent=str(in_dir),
        parent_provenance=read_provenance(in_dir),
        sparsity=float(sparsity),
        method="global unstructured magnitude (attention + MLP matrices)",
        measured_sparsity=report["measured"],
    )
    with io.atomic_dir(out_dir) as tmp:
        write_model_folder(model, tokenizer, tmp, prov)
        reloaded, _ = load_model(tmp)
        report["measured_after_reload"] = measure_sparsity(reloaded)
        if abs(report["measured_after_reload"] - sparsity) > tolerance:
            raise RuntimeError(
                f"pruning {in_dir}: the saved model has sparsity "
                f"{report['measured_after_reload']:.4f}, requested {sparsity}"
            )
        io.write_json(Path(tmp) / "pruning.json", report)
    log.info("saved pruned model to %s", out_dir)
    return report
