"""Per-token log-likelihoods of token sequences under a causal LM, in batches.

The one place that pads, masks and runs a causal LM for scoring: held-out
perplexity (:func:`compfair.perplexity.perplexity`), continuations under the
teacher (:func:`compfair.perplexity.continuation_nll`) and the intrinsic
benchmarks (:mod:`compfair.intrinsic`) all call :func:`token_log_likelihoods`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from compfair.models import max_positions

log = logging.getLogger(__name__)


def _device(model: Any) -> torch.device:
    """Where the model's parameters are (CPU for a parameter-less stand-in)."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        first = next(iter(parameters()), None)
        if first is not None:
            return first.device
    return torch.device("cpu")


def _check(
    sequences: Sequence[Sequence[int]], score_from: Sequence[int], limit: int | None
) -> None:
    if len(score_from) != len(sequences):
        raise ValueError(f"{len(sequences)} sequences but {len(score_from)} score_from values")
    for i, (seq, start) in enumerate(zip(sequences, score_from, strict=True)):
        if not 1 <= start <= len(seq):
            raise ValueError(
                f"sequence {i}: score_from must be in [1, {len(seq)}] (its length), got {start}"
            )
        if limit is not None and len(seq) > limit:
            raise ValueError(
                f"sequence {i} has {len(seq)} tokens, more than the model's {limit} positions"
            )


def _batch_log_probs(
    model: Any, seqs: list[Sequence[int]], pad_id: int, device: torch.device
) -> torch.Tensor:
    """``[B, T - 1]`` float32 log p(x_t | x_<t) for t = 1..T-1 of right-padded ``seqs``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    # Right padding: under causal attention no real token sees the pads after it,
    # so every real token keeps the positions and context of its unpadded sequence.
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits
    if tuple(logits.shape[:2]) != (len(seqs), width):
        raise ValueError(f"model returned logits {tuple(logits.shape)} for ids {tuple(ids.shape)}")
    logits = logits[:, :-1].float()  # a copy only for half-precision models
    targets = ids[:, 1:].unsqueeze(-1)
    # log p(target) = logit[target] - logsumexp(logits): no [B, T, V] log-softmax copy.
    return logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1)


def token_log_likelihoods(
    model: Any,
    sequences: Sequence[Sequence[int]],
    score_from: Sequence[int],
    batch_size: int = 8,
    pad_id: int = 0,
    desc: str = "log-likelihoods",
) -> list[np.ndarray]:
    """Log-probabilities (nats) of each sequence's tokens from ``score_from[i]`` on.

    For sequence ``i`` (token ids ``x_0 .. x_{L-1}``) the result ``out[i]`` is a
    float64 array of length ``L - score_from[i]`` holding
    ``log p(x_t | x_0 .. x_{t-1})`` for ``t = score_from[i] .. L - 1``, in order.
    ``score_from[i]`` must lie in ``[1, L]`` (``x_0`` has no context; ``L`` gives an
    empty array). ``model(input_ids=[B, T], attention_mask=[B, T])`` must return an
    object whose ``.logits`` is ``[B, T, V]``.

    Sequences are right-padded with ``pad_id`` (its value never matters: padded
    positions are neither attended to by real tokens nor scored) and batched
    longest first (an out-of-memory error shows in the first batch, and each batch
    pads little). Runs under ``torch.inference_mode()`` on the model's device, in
    eval mode (restored afterwards); log-probabilities are computed in float32
    whatever the model's dtype. Refuses (``ValueError``) sequences longer than the
    model's position embeddings (:func:`compfair.models.max_positions`) and
    ``score_from`` values outside ``[1, L]``. Results are in input order and do
    not depend on ``batch_size`` beyond float32 rounding.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _check(sequences, score_from, max_positions(model))
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    log.debug(
        "%s: %d sequences, %d tokens, %d batches",
        desc,
        len(sequences),
        sum(len(seq) for seq in sequences),
        len(batches),
    )
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    device = _device(model)
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            bar = tqdm(batches, desc=desc, unit="batch", mininterval=5, disable=len(batches) < 4)
            for batch in bar:
                log_p = _batch_log_probs(model, [sequences[i] for i in batch], pad_id, device)
                log_p = log_p.double().cpu().numpy()
                for row, i in enumerate(batch):
                    # Row position t - 1 predicts token t.
                    out[i] = log_p[row, score_from[i] - 1 : len(sequences[i]) - 1].copy()
    finally:
        if was_training:
            model.train()
    return out


__all__ = ["token_log_likelihoods"]
