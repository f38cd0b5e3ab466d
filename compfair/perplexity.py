"""Perplexities that need a model: held-out text and continuations under the teacher.

- :func:`evaluate_model`: held-out perplexity, parameter count and measured
  sparsity of one model (``eval/{model}.json``);
- :func:`rows_perplexity`: perplexity of a model's continuations under
  the teacher, the quality guard against word salad (used by
  :func:`compfair.quality.quality_report`).

Kept apart from :mod:`compfair.metrics` and :mod:`compfair.quality` so that the
table-only jobs (aggregation, figures) start without importing torch and
transformers. This module does not import :mod:`compfair.quality` (which imports
it lazily), so there is no import cycle. Every likelihood comes from
:func:`compfair.loglik.token_log_likelihoods`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from compfair.compression.sparsity import measure_sparsity
from compfair.io import InputError, PathLike, write_json
from compfair.loglik import token_log_likelihoods
from compfair.models import count_parameters, load_model, max_positions, prunable_weights

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- held-out text


def perplexity(
    model: Any,
    tokens: torch.Tensor,
    seq_len: int,
    max_tokens: int | None = None,
    batch_size: int = 8,
) -> float:
    """Perplexity of ``model`` on a 1-D token stream, over non-overlapping windows.

    The stream (first ``max_tokens`` tokens if given) is cut into windows of
    ``seq_len`` tokens (the last one may be shorter; a 1-token tail is dropped);
    in a window of length L the model predicts L - 1 tokens from their left
    context inside the window. ``seq_len`` beyond the model's positions is
    lowered to them, with a warning. Returns
    ``exp(sum of NLL / number of predicted tokens)``.
    """
    if tokens.dim() != 1:
        raise ValueError(f"expected a 1-D token stream, got shape {tuple(tokens.shape)}")
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    limit = max_positions(model)
    if limit is not None and seq_len > limit:
        log.warning("seq_len %d exceeds the model's %d positions; using %d", seq_len, limit, limit)
        seq_len = limit
    if max_tokens is not None:
        tokens = tokens[:max_tokens]
    stream = tokens.long().tolist()
    windows = [stream[i : i + seq_len] for i in range(0, len(stream), seq_len)]
    windows = [w for w in windows if len(w) >= 2]
    if not windows:
        raise ValueError(f"need at least 2 tokens for perplexity, got {len(stream)}")
    log_p = token_log_likelihoods(
        model, windows, [1] * len(windows), batch_size=batch_size, desc="perplexity"
    )
    total_nll = -sum(float(lp.sum()) for lp in log_p)
    total_count = sum(lp.size for lp in log_p)
    return math.exp(total_nll / total_count)


def _load_token_stream(path: Path) -> torch.Tensor:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except SafetensorError as exc:
        raise InputError(f"{path}: not a safetensors file ({exc})") from exc
    if "input_ids" not in tensors:
        raise InputError(f"{path}: no tensor 'input_ids' (found: {', '.join(tensors) or 'none'})")
    ids = tensors["input_ids"]
    if ids.dim() != 1 or ids.dtype.is_floating_point:
        raise InputError(
            f"{path}: 'input_ids' must be a 1-D integer tensor, got {ids.dtype} {tuple(ids.shape)}"
        )
    return ids.long()


def evaluate_model(
    model_dir: Path,
    heldout_tokens_path: Path,
    out_json: Path,
    model_id: str,
    seq_len: int,
    max_tokens: int | None,
    batch_size: int,
) -> dict:
    """Held-out perplexity, parameter counts and measured sparsity of one model.

    Writes ``{"model", "perplexity", "heldout_tokens", "n_parameters",
    "n_prunable", "sparsity"}`` to ``out_json`` and returns it;
    ``heldout_tokens`` is the number of tokens of the stream evaluated.
    """
    tokens = _load_token_stream(Path(heldout_tokens_path))
    model, _tokenizer = load_model(Path(model_dir))
    if tokens.numel() and int(tokens.max()) >= model.get_input_embeddings().num_embeddings:
        raise InputError(
            f"{heldout_tokens_path}: token id {int(tokens.max())} is outside the vocabulary of "
            f"{model_dir} ({model.get_input_embeddings().num_embeddings})"
        )
    if torch.cuda.is_available():
        model.to("cuda")
    used = tokens[:max_tokens] if max_tokens is not None else tokens
    ppl = perplexity(model, used, seq_len=seq_len, max_tokens=None, batch_size=batch_size)
    result = {
        "model": model_id,
        "perplexity": ppl,
        "heldout_tokens": int(used.numel()),
        "n_parameters": int(count_parameters(model)),
        "n_prunable": int(sum(p.numel() for _, p in prunable_weights(model))),
        "sparsity": float(measure_sparsity(model)),
    }
    log.info(
        "%s: perplexity %.2f on %d tokens, %d parameters, sparsity %.4f",
        model_id,
        ppl,
        result["heldout_tokens"],
        result["n_parameters"],
        result["sparsity"],
    )
    write_json(out_json, result)
    return result


# --------------------------------------------------------------------------- continuations under the teacher


def _encode_pair(
    tokenizer: Any, prompt: str, continuation: str, limit: int | None
) -> tuple[list[int], int] | None:
    """Token ids of prompt + continuation and the prompt's length; None if nothing to score.

    The prompt is encoded as generation encodes it (an empty prompt becomes the
    BOS token, EOS without one); the continuation without special tokens. Too
    long a pair loses prompt tokens from the left, then continuation tokens
    from the right.
    """
    cont = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not cont:
        return None
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    head = list(tokenizer(prompt)["input_ids"]) or [start]
    if limit is not None and len(head) + len(cont) > limit:
        cont = cont[: limit - 1]
        head = head[len(head) - (limit - len(cont)) :]
    return head + cont, len(head)


def continuation_nll(
    model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], batch_size: int = 8
) -> tuple[float, int]:
    """Summed NLL (nats) of the continuation tokens given their prompts, and their count.

    ``pairs`` holds ``(prompt, continuation)``; only continuation tokens are
    scored, each conditioned on the prompt and the continuation before it.
    Empty and whitespace-only continuations are left out.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    limit = max_positions(model)
    encoded = []
    for prompt, continuation in pairs:
        if not continuation.strip():
            continue
        pair = _encode_pair(tokenizer, prompt, continuation, limit)
        if pair is not None:
            encoded.append(pair)
    if not encoded:
        return 0.0, 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    log_p = token_log_likelihoods(
        model,
        [ids for ids, _ in encoded],
        [n_prompt for _, n_prompt in encoded],
        batch_size=batch_size,
        pad_id=pad,
        desc="teacher perplexity",
    )
    return -sum(float(lp.sum()) for lp in log_p), sum(lp.size for lp in log_p)


def rows_perplexity(
    model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], batch_size: int
) -> tuple[float, int]:
    """Perplexity of the rows' continuations (given their prompts) under a loaded model.

    ``rows`` hold string ``prompt`` and ``continuation``; returns
    ``(exp(summed NLL / tokens), tokens)`` over the non-empty continuations,
    ``(nan, 0)`` when there are none.
    """
    total, count = continuation_nll(
        model, tokenizer, [(r["prompt"], r["continuation"]) for r in rows], batch_size
    )
    if count == 0:
        log.warning("no non-empty continuation to score; teacher perplexity undefined")
        return float("nan"), 0
    return math.exp(total / count), count


def load_scorer_model(model_dir: PathLike) -> tuple[Any, Any]:
    """A model folder loaded to score text with, on the GPU when there is one."""
    model, tokenizer = load_model(Path(model_dir))
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer


def perplexity_of_rows(
    teacher_dir: PathLike, rows: Sequence[Mapping[str, Any]], batch_size: int
) -> tuple[float, int]:
    """:func:`rows_perplexity` under the model folder ``teacher_dir``."""
    return rows_perplexity(*load_scorer_model(teacher_dir), rows, batch_size)
