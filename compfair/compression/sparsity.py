"""Unstructured sparsity on the compressible matrices: masks from scores, and measurement.

The matrices are those of :func:`compfair.models.prunable_weights` (every
``nn.Linear`` / GPT-2 ``Conv1D`` inside the decoder blocks; embeddings, norms
and the LM head never). Pruning methods differ only in the *score* of each
weight (``|w|``, a random number, ``|w| * ||x||``) and in the *scope* of the
ranking (all matrices together, or each matrix alone); the zeroing, its
tie-breaking and the measurement live here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from compfair.models import measure_sparsity, per_matrix_sparsity, prunable_weights

log = logging.getLogger(__name__)

#: ``score(name, weight) -> tensor of weight's shape``; lower scores are pruned first.
ScoreFn = Callable[[str, nn.Parameter], torch.Tensor]


def _prune_lowest(
    weights: Sequence[torch.Tensor], scores: Sequence[torch.Tensor], n_prune: int
) -> float:
    """Zero the ``n_prune`` lowest-scored entries of ``weights`` together; return the threshold.

    Ties at the threshold are broken by position (matrix order, then
    row-major order inside a matrix), so exactly ``n_prune`` entries go.
    """
    if n_prune <= 0:
        return float("-inf")
    flat = torch.cat([s.flatten() for s in scores])
    threshold = float(torch.kthvalue(flat, n_prune).values)
    ties_left = n_prune - int((flat < threshold).sum())
    del flat
    for weight, score in zip(weights, scores, strict=True):
        mask = (score < threshold).contiguous()
        if ties_left > 0:
            tie_idx = torch.nonzero((score == threshold).flatten()).squeeze(1)[:ties_left]
            mask.view(-1)[tie_idx] = True
            ties_left -= tie_idx.numel()
        weight.masked_fill_(mask, 0.0)
    assert ties_left == 0, "tie-breaking left entries unpruned"
    return threshold


@torch.no_grad()
def prune_by_scores(
    model: nn.Module, sparsity: float, score: ScoreFn, scope: str
) -> dict[str, Any]:
    """Zero the lowest-scored ``sparsity`` share of the compressible weights, in place.

    ``scope="global"`` ranks all matrices together (``round(sparsity * total)``
    entries); ``scope="matrix"`` ranks each matrix alone
    (``round(sparsity * numel)`` entries each, so every matrix is within one
    weight of ``sparsity``). Returns ``{"requested", "measured", "n_pruned",
    "n_total", "scope", "per_matrix"}``.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    named = prunable_weights(model)
    n_total = sum(w.numel() for _, w in named)
    if scope == "global":
        scores = [score(name, w) for name, w in named]
        n_pruned = round(sparsity * n_total)
        _prune_lowest([w for _, w in named], scores, n_pruned)
        del scores
    elif scope == "matrix":
        n_pruned = 0
        for name, w in named:
            n = round(sparsity * w.numel())
            _prune_lowest([w], [score(name, w)], n)
            n_pruned += n
    else:
        raise ValueError(f"scope must be 'global' or 'matrix', got {scope!r}")
    report = {
        "requested": float(sparsity),
        "measured": measure_sparsity(model),
        "n_pruned": int(n_pruned),
        "n_total": int(n_total),
        "scope": scope,
        "per_matrix": per_matrix_sparsity(model),
    }
    log.info(
        "pruned %d of %d weights (%s; requested %.4f, measured %.4f)",
        n_pruned,
        n_total,
        scope,
        sparsity,
        report["measured"],
    )
    return report


def check_sparsity(
    model: nn.Module, sparsity: float, tolerance: float, scope: str
) -> dict[str, Any]:
    """Measure ``model`` and raise ``RuntimeError`` if it is off ``sparsity``.

    Always checks the overall share against ``tolerance``; with
    ``scope="matrix"`` also every matrix within one weight of its target.
    """
    measured = measure_sparsity(model)
    if abs(measured - sparsity) > tolerance:
        raise RuntimeError(
            f"measured sparsity {measured:.4f} is more than {tolerance} from the requested {sparsity}"
        )
    out: dict[str, Any] = {"measured_after_reload": measured}
    if scope == "matrix":
        for name, w in prunable_weights(model):
            zeros = int((w == 0).sum())
            if abs(zeros - round(sparsity * w.numel())) > 1:
                raise RuntimeError(
                    f"{name}: {zeros} zeros of {w.numel()}, requested {round(sparsity * w.numel())}"
                )
    return out
