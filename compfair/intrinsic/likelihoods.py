"""Sentence log-likelihoods under a causal LM, the one scoring every benchmark uses.

A sentence is scored as a whole: it is tokenised without special tokens, the
tokenizer's BOS token (its EOS token where it has no BOS; GPT-2's
``<|endoftext|>`` is both) is put in front, and the log-probabilities of all
the sentence's tokens are added, so the first word is conditioned on BOS rather
than left out. The batching, padding and masking are
:func:`compfair.loglik.token_log_likelihoods`'s, imported when a model is
scored (torch is not imported with this module).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _start_token(tokenizer: Any) -> int:
    for name in ("bos_token_id", "eos_token_id"):
        token = getattr(tokenizer, name, None)
        if token is not None:
            return int(token)
    raise ValueError(f"tokenizer {type(tokenizer).__name__} has neither a BOS nor an EOS token")


def token_scores(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int
) -> tuple[list[list[int]], list[np.ndarray]]:
    """``[BOS, *ids]`` of each text and the log p (nats, float64) of its tokens after BOS.

    ``log_p[i][t - 1]`` is ``log p(seqs[i][t] | seqs[i][:t])``, so ``log_p[i]`` has
    one entry per token of text ``i``. Refuses (``ValueError``) a ``batch_size``
    below 1, texts without tokens and texts longer than the model's positions.
    """
    from compfair.loglik import token_log_likelihoods  # torch, only when scoring

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    start = _start_token(tokenizer)
    pad = getattr(tokenizer, "pad_token_id", None)
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    for text, ids in zip(texts, encoded, strict=True):
        if not ids:
            raise ValueError(f"text {text!r} has no tokens")
    seqs = [[start, *ids] for ids in encoded]
    log_p = token_log_likelihoods(
        model, seqs, [1] * len(seqs), batch_size, pad_id=start if pad is None else int(pad)
    )
    return seqs, log_p


def sentence_log_likelihoods(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood of each text under a causal LM, and its number of tokens.

    Each text is tokenised without special tokens and preceded by BOS (or EOS);
    the result is ``sum_t log p(x_t | BOS, x_<t)`` over the text's tokens, in
    nats. Duplicate texts are scored once. Returns two arrays of length
    ``len(texts)``: float64 log-likelihoods and int token counts. Refuses
    (``ValueError``) texts without tokens and texts longer than the model's
    positions.
    """
    unique = list(dict.fromkeys(texts))
    seqs, log_p = token_scores(model, tokenizer, unique, batch_size)
    index = {text: i for i, text in enumerate(unique)}
    rows = [index[t] for t in texts]
    scores = np.array([float(log_p[i].sum()) for i in rows], dtype=np.float64)
    lengths = np.array([len(seqs[i]) - 1 for i in rows], dtype=np.int64)
    return scores, lengths


__all__ = ["sentence_log_likelihoods", "token_scores"]
