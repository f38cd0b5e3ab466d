"""Perplexities that need a model: held-out text and continuations under the teacher.

- :func:`evaluate_model`: held-out perplexity, parameter count and measured
  sparsity of one model (``eval/{model}.json``);
- :func:`rows_nll`: the NLL of each of a model's continuations under the
  teacher, from the token ids the model drew (its text re-tokenised when the
  ids cannot be scored), the quality guard against word salad (used by
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

from compfair.io import InputError, PathLike, write_json
from compfair.loglik import token_log_likelihoods
from compfair.models import (
    count_parameters,
    load_model,
    max_positions,
    measure_sparsity,
    prunable_weights,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- held-out text


def window_nll(
    model: Any,
    tokens: torch.Tensor,
    seq_len: int,
    max_tokens: int | None = None,
    batch_size: int = 8,
) -> tuple[list[float], list[int]]:
    """Summed NLL (nats) and number of predicted tokens of each window of a 1-D token stream.

    The stream (first ``max_tokens`` tokens if given) is cut into non-overlapping windows of
    ``seq_len`` tokens (the last one may be shorter; a 1-token tail is dropped); in a window of
    length L the model predicts L - 1 tokens from their left context inside the window.
    ``seq_len`` beyond the model's positions is lowered to them, with a warning.
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
    return [-float(lp.sum()) for lp in log_p], [int(lp.size) for lp in log_p]


def perplexity(
    model: Any,
    tokens: torch.Tensor,
    seq_len: int,
    max_tokens: int | None = None,
    batch_size: int = 8,
) -> float:
    """Perplexity of ``model`` on a 1-D token stream, over the windows of :func:`window_nll`.

    Returns ``exp(sum of NLL / number of predicted tokens)`` over all windows.
    """
    nll, counts = window_nll(model, tokens, seq_len, max_tokens, batch_size)
    return math.exp(sum(nll) / sum(counts))


def load_token_stream(path: Path) -> torch.Tensor:
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
    "n_prunable", "sparsity", "window_nll", "window_tokens"}`` to ``out_json``
    and returns it; ``heldout_tokens`` is the number of tokens of the stream
    evaluated, ``window_nll`` and ``window_tokens`` the summed NLL and predicted
    tokens of each window (:func:`window_nll`), from which the quality guard
    bootstraps an interval of the ratio to the parent's perplexity.
    """
    tokens = load_token_stream(Path(heldout_tokens_path))
    model, _tokenizer = load_model(Path(model_dir))
    if tokens.numel() and int(tokens.max()) >= model.get_input_embeddings().num_embeddings:
        raise InputError(
            f"{heldout_tokens_path}: token id {int(tokens.max())} is outside the vocabulary of "
            f"{model_dir} ({model.get_input_embeddings().num_embeddings})"
        )
    if torch.cuda.is_available():
        model.to("cuda")
    used = tokens[:max_tokens] if max_tokens is not None else tokens
    nll, counts = window_nll(model, used, seq_len=seq_len, batch_size=batch_size)
    ppl = math.exp(sum(nll) / sum(counts))
    result = {
        "model": model_id,
        "perplexity": ppl,
        "heldout_tokens": int(used.numel()),
        "n_parameters": int(count_parameters(model)),
        "n_prunable": int(sum(p.numel() for _, p in prunable_weights(model))),
        "sparsity": float(measure_sparsity(model)),
        "window_nll": nll,
        "window_tokens": counts,
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

#: Fields of a generations row (:mod:`compfair.generate`) with the token ids the model was
#: conditioned on and the ids it drew.
PROMPT_IDS, CONTINUATION_IDS = "prompt_token_ids", "continuation_token_ids"

#: Encoded rows: ``(token ids, prompt length)`` per row, None for a row with nothing to score.
Encoded = list[tuple[list[int], int] | None]


def _fit(head: list[int], cont: list[int], limit: int | None) -> tuple[list[int], int]:
    """``(head + cont, len(head))``; too long a pair loses prompt tokens from the left, then
    continuation tokens from the right."""
    if limit is not None and len(head) + len(cont) > limit:
        cont = cont[: limit - 1]
        head = head[len(head) - (limit - len(cont)) :]
    return head + cont, len(head)


def _encode_pair(
    tokenizer: Any, prompt: str, continuation: str, limit: int | None
) -> tuple[list[int], int] | None:
    """Token ids of prompt + continuation and the prompt's length; None if nothing to score.

    The prompt is encoded as generation encodes it (an empty prompt becomes the
    BOS token, EOS without one); the continuation without special tokens.
    """
    cont = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not cont:
        return None
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    head = list(tokenizer(prompt)["input_ids"]) or [start]
    return _fit(head, cont, limit)


def _encode_text(tokenizer: Any, rows: Sequence[Mapping[str, Any]], limit: int | None) -> Encoded:
    """Each row's prompt and continuation re-tokenised; None for an empty or blank continuation."""
    return [
        _encode_pair(tokenizer, r["prompt"], r["continuation"], limit)
        if r["continuation"].strip()
        else None
        for r in rows
    ]


def stored_ids_problem(
    tokenizer: Any, vocab_size: int, rows: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why the rows' stored token ids cannot be scored by a model with this tokenizer (None: they can).

    They can when every row has :data:`PROMPT_IDS` and :data:`CONTINUATION_IDS`, every id is
    below ``vocab_size`` (the smaller of the tokenizer's and the embedding's), the prompt ids are
    not empty, and the tokenizer decodes each row's continuation ids to its stored
    ``continuation``: the model that wrote them used this tokenizer's vocabulary.
    """
    for i, row in enumerate(rows, start=1):
        head, cont = row.get(PROMPT_IDS), row.get(CONTINUATION_IDS)
        if not isinstance(head, list) or not isinstance(cont, list):
            return f"row {i} has no {PROMPT_IDS} and {CONTINUATION_IDS} (an older generations file)"
        if not head:
            return f"row {i}: {PROMPT_IDS} is empty"
        ids = head + cont
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
            return f"row {i}: token ids must be integers"
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            return f"row {i}: token id {bad[0]} is outside the teacher's vocabulary of {vocab_size}"
        if tokenizer.decode(cont, skip_special_tokens=True) != row["continuation"]:
            return (
                f"row {i}: the teacher's tokenizer decodes the row's token ids to other text than "
                "its continuation (the model that wrote it has another tokenizer)"
            )
    return None


def _vocab_size(model: Any, tokenizer: Any) -> int:
    embeddings = model.get_input_embeddings().num_embeddings
    return min(int(embeddings), len(tokenizer))


def encode_rows(
    model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], where: str = "rows"
) -> tuple[Encoded, str]:
    """What the teacher scores of each row, and from what: ``"token_ids"`` or ``"text"``.

    The stored token ids (the prompt's ids as the model saw them, the continuation's as it drew
    them) when :func:`stored_ids_problem` finds none; otherwise, for the whole file, the prompt
    and continuation re-tokenised by the teacher's tokenizer, with a warning naming ``where`` and
    the reason. Rows whose continuation is empty or blank are not scored (None), either way.
    """
    limit = max_positions(model)
    problem = stored_ids_problem(tokenizer, _vocab_size(model, tokenizer), rows)
    if problem is not None:
        log.warning("%s: %s; the teacher scores the re-tokenised text instead", where, problem)
        return _encode_text(tokenizer, rows, limit), "text"
    encoded: Encoded = [
        _fit(list(r[PROMPT_IDS]), list(r[CONTINUATION_IDS]), limit)
        if r["continuation"].strip() and r[CONTINUATION_IDS]
        else None
        for r in rows
    ]
    return encoded, "token_ids"


def encoded_nll(
    model: Any, tokenizer: Any, encoded: Encoded, batch_size: int = 8
) -> list[tuple[float, int]]:
    """Summed NLL (nats) of each row's continuation tokens given its prompt, and their count.

    ``encoded`` is :func:`encode_rows`' first value; a None row gives ``(0.0, 0)``. Only
    continuation tokens are scored, each conditioned on the prompt and the continuation
    before it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    scored = [i for i, pair in enumerate(encoded) if pair is not None]
    out = [(0.0, 0)] * len(encoded)
    if not scored:
        return out
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    log_p = token_log_likelihoods(
        model,
        [encoded[i][0] for i in scored],  # type: ignore[index]
        [encoded[i][1] for i in scored],  # type: ignore[index]
        batch_size=batch_size,
        pad_id=pad,
        desc="teacher perplexity",
    )
    for i, lp in zip(scored, log_p, strict=True):
        out[i] = (-float(lp.sum()), int(lp.size))
    return out


def continuation_nll(
    model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], batch_size: int = 8
) -> tuple[float, int]:
    """Summed NLL (nats) of re-tokenised ``(prompt, continuation)`` texts, and their token count.

    Empty and whitespace-only continuations are left out.
    """
    rows = [{"prompt": p, "continuation": c} for p, c in pairs]
    per_row = encoded_nll(
        model, tokenizer, _encode_text(tokenizer, rows, max_positions(model)), batch_size
    )
    return sum(nll for nll, _ in per_row), sum(n for _, n in per_row)


def rows_nll(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    batch_size: int,
    where: str = "rows",
) -> tuple[list[tuple[float, int]], str]:
    """Per row, summed NLL and token count of its continuation under a loaded model, and the
    input scored (``"token_ids"`` or ``"text"``, see :func:`encode_rows`)."""
    encoded, source = encode_rows(model, tokenizer, rows, where)
    return encoded_nll(model, tokenizer, encoded, batch_size), source


def rows_perplexity(
    model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], batch_size: int
) -> tuple[float, int]:
    """Perplexity of the rows' continuations (given their prompts) under a loaded model.

    ``rows`` are generations rows (:func:`rows_nll`); returns ``(exp(summed NLL / tokens),
    tokens)`` over the non-empty continuations, ``(nan, 0)`` when there are none.
    """
    per_row, _ = rows_nll(model, tokenizer, rows, batch_size)
    total, count = sum(n for n, _ in per_row), sum(c for _, c in per_row)
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
