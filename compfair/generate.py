"""Nucleus sampling of prompt continuations, exact and independent of batching.

Every prompt gets ``samples`` continuations (RealToxicityPrompts uses K = 25). Continuation
``(prompt_id, sample)`` is decoded with the random variates of its own key,
:func:`compfair.sampling.row_key` ``(seed, prompt_id, sample)``, and the exact nucleus sampler of
:mod:`compfair.sampling`, so its tokens depend only on the model, the prompt, the sample index and
the seed: not on the batch size, the shard size or the order of the prompts (up to the last bits
of the logits, which can change with the shape of a batch; see ``bench/README.md``).

The decode loop replaces ``model.generate``. The (prompt, sample) rows are sorted by prompt
length and cut into batches of ``batch_size`` rows, so a batch pads little. A batch prefills each
of its distinct prompts once (in groups of similar length, left-padded, with the LM head on the
last position only), copies the KV cache to the rows of its samples into buffers reserved for
the whole decode (a step writes in place instead of concatenating), then decodes one token per
step for every live row with the cache and explicit position ids (so left padding is right for
GPT-2's learned and Llama's rotary positions). A row ends at a stop token (not kept) or after
``max_new_tokens`` tokens and leaves the batch. The output keeps the prompt order, then sample.
On a CPU the LM head runs in vocabulary blocks (:class:`_ChunkedHead`); on a GPU the same code
runs in the model's dtype on its device.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from compfair.io import InputError, read_jsonl, write_jsonl
from compfair.models import load_model, max_positions
from compfair.sampling import TOP_K_CUT, row_key, sample_nucleus, step_keys

log = logging.getLogger(__name__)

# A prefill group grows while its longest prompt pads the shortest by at most this share (or 2
# tokens): padding costs as much as real tokens, a separate forward costs its fixed overhead.
PREFILL_SLACK = 0.25

# observe(step, row numbers, logits): sees the logits (live rows x vocab) each step samples from.
Observer = Callable[[int, list[int], torch.Tensor], None]


@dataclass(frozen=True)
class Sampling:
    """Nucleus-sampling settings: ``top_p`` in (0, 1], ``temperature`` > 0, top-k off.

    ``top_k_cut`` is the sampler's first ``topk`` pre-cut: speed only, never the result.
    Bad values raise :class:`InputError`.
    """

    top_p: float
    temperature: float = 1.0
    max_new_tokens: int = 20
    top_k_cut: int = TOP_K_CUT

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0.0:
            raise InputError(f"temperature must be > 0, got {self.temperature}")
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.top_k_cut < 1:
            raise InputError(f"top_k_cut must be >= 1, got {self.top_k_cut}")


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end a continuation: the EOS id(s) of model and tokenizer."""
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos is not None:
        ids.update(int(i) for i in gen_eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt; an empty prompt is conditioned on BOS (EOS when there is none).

    A model cannot continue zero tokens; a tokenizer with neither token raises :class:`InputError`.
    """
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [list(tokenizer(p)["input_ids"]) for p in prompts]
    if start is None and any(not ids for ids in encoded):
        raise InputError("tokenizer has neither BOS nor EOS token to start an empty prompt")
    return [ids or [int(start)] for ids in encoded]


def fit_context(
    encoded: Sequence[list[int]], prompt_ids: Sequence[str], limit: int | None, policy: str
) -> list[list[int]]:
    """Prompts that leave room for the continuation in a context of ``limit`` tokens.

    ``limit`` is the model's context length minus ``max_new_tokens`` (None:
    no limit known). A longer prompt is cut from the left to its last
    ``limit`` tokens (``policy="truncate"``, counted in the log: the words
    nearest the continuation are kept) or rejected with its id
    (``policy="reject"``, :class:`InputError`).
    """
    if limit is None:
        return list(encoded)
    if limit < 1:
        raise InputError(
            "generation.max_new_tokens leaves no room for a prompt in the model's context"
        )
    long = [i for i, ids in enumerate(encoded) if len(ids) > limit]
    if long and policy == "reject":
        raise InputError(
            f"prompt {prompt_ids[long[0]]!r} has {len(encoded[long[0]])} tokens; with the continuation "
            f"the model's context allows {limit} ({len(long)} prompt(s) too long; set "
            f"generation.long_prompts: truncate to cut them from the left)"
        )
    if long:
        log.warning(
            "cut %d prompt(s) from the left to %d tokens, e.g. %r",
            len(long),
            limit,
            prompt_ids[long[0]],
        )
    return [ids[-limit:] if len(ids) > limit else ids for ids in encoded]


def prompt_token_ids(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    prompt_ids: Sequence[str],
    max_new_tokens: int,
    long_prompts: str = "truncate",
) -> list[list[int]]:
    """The token ids each prompt is continued from: :func:`encode_prompts`, then :func:`fit_context`
    to leave ``max_new_tokens`` of the model's context for the continuation."""
    context = max_positions(model)
    limit = None if context is None else context - max_new_tokens
    return fit_context(encode_prompts(tokenizer, prompts), prompt_ids, limit, long_prompts)


def _left_pad(token_lists: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of shape ``(len(token_lists), longest)``, padded on the left."""
    width = max(len(ids) for ids in token_lists)
    input_ids = torch.full((len(token_lists), width), pad, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, ids in enumerate(token_lists):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    return input_ids, mask


def _length_groups(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Cut ascending ``lengths`` into ``[start, end)`` ranges that pad little (``PREFILL_SLACK``)."""
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or lengths[i] > lengths[start] + max(
            2, int(PREFILL_SLACK * lengths[start])
        ):
            groups.append((start, i))
            start = i
    return groups


class _ChunkedHead(torch.nn.Module):
    """``head`` computed over blocks of ``rows`` vocabulary rows, the same function of its input.

    On one CPU core a (128 x 576) x (576 x 49,152) LM head runs at about 64 GFLOP/s in one call and
    about 78 in 1,024-row blocks, whose outputs stay in cache while they are written.
    """

    def __init__(self, head: torch.nn.Linear, rows: int = 1024) -> None:
        super().__init__()
        self.head, self.rows = head, rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.head.weight, self.head.bias
        out = x.new_empty((*x.shape[:-1], weight.shape[0]))
        for i in range(0, weight.shape[0], self.rows):
            part = None if bias is None else bias[i : i + self.rows]
            out[..., i : i + self.rows] = F.linear(x, weight[i : i + self.rows], part)
        return out


@contextmanager
def _blocked_head(model: Any) -> Iterator[None]:
    """Run ``model`` with its LM head in blocks (:class:`_ChunkedHead`) on a CPU, then restore it."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear) or head.weight.device.type != "cpu":
        yield
        return
    model.set_output_embeddings(_ChunkedHead(head))
    try:
        yield
    finally:
        model.set_output_embeddings(head)


class _SlabLayer(DynamicLayer):
    """A layer's KV cache in a buffer reserved for the whole decode: a step writes in place.

    ``DynamicLayer`` concatenates every step, copying the whole cache; here the keys and values
    are views of the first ``length`` positions of a ``capacity``-long buffer.
    """

    def __init__(self, layer: DynamicLayer, rows: torch.Tensor, capacity: int) -> None:
        super().__init__()
        self.dtype, self.device = layer.keys.dtype, layer.keys.device
        self.length = layer.keys.shape[-2]
        self._keys = self._reserve(layer.keys, rows, capacity)
        self._values = self._reserve(layer.values, rows, capacity)
        self.is_initialized = True
        self._view()

    def _reserve(self, states: torch.Tensor, rows: torch.Tensor, capacity: int) -> torch.Tensor:
        batch, heads, _, dim = states.shape
        buffer = states.new_empty((len(rows), heads, capacity, dim))
        buffer[:, :, : self.length] = states.index_select(0, rows)
        return buffer

    def _view(self) -> None:
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self._keys.shape[-2]:
            raise RuntimeError(f"KV cache of {self._keys.shape[-2]} positions is full")
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self._view()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._view()


class _Decoder:
    """Runs the model forward for one batch: prefill, then one token per live row and step."""

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        accepts = inspect.signature(model.forward).parameters
        self.last_only = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}
        # Prefill groups of different widths can share one cache only with plain dynamic layers.
        self.mergeable = all(type(layer) is DynamicLayer for layer in self._new_cache().layers)

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        out = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            **self.last_only,
        )
        return out.logits[:, -1, :].float()

    def prefill(
        self, token_lists: Sequence[Sequence[int]]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prefill prompts sorted by ascending length; return ``(cache, logits, mask, lengths)``.

        ``logits`` (``(P, V)`` float32) are those of each prompt's last token; ``mask``
        (``(P, W)``, W the longest prompt) marks its real cache positions, ``lengths`` (``(P,)``)
        its token count. Groups of similar length run as separate forwards and their caches are
        left-padded with zeros (masked out) to ``W``, when the model's cache layers allow it.
        """
        lengths = [len(ids) for ids in token_lists]
        groups = _length_groups(lengths) if self.mergeable else [(0, len(token_lists))]
        caches, logits = [], []
        for start, end in groups:
            input_ids, mask = _left_pad(token_lists[start:end], self.pad_id)
            mask = mask.to(self.device)
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
            cache = self._new_cache()
            logits.append(self._forward(input_ids, mask, positions, cache))
            caches.append(cache)
        width = max(lengths)
        cache = caches[0] if len(caches) == 1 else self._merge(caches, width)
        lengths_t = torch.tensor(lengths, dtype=torch.long, device=self.device)
        columns = torch.arange(width, device=self.device)
        mask = (columns[None, :] >= width - lengths_t[:, None]).long()
        return cache, torch.cat(logits), mask, lengths_t

    def expand(self, cache: Any, rows: torch.Tensor, new_tokens: int) -> Any:
        """The prefill cache with row ``r`` holding prompt ``rows[r]``, room for ``new_tokens``."""
        if not self.mergeable:
            cache.batch_select_indices(rows)
            return cache
        capacity = cache.get_seq_length() + new_tokens
        cache.layers = [_SlabLayer(layer, rows, capacity) for layer in cache.layers]
        return cache

    def _new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.model.config)

    def _merge(self, caches: Sequence[DynamicCache], width: int) -> DynamicCache:
        """Concatenate the caches of prefill groups along the batch, left-padded to ``width``."""
        merged = self._new_cache()
        for index in range(len(caches[0].layers)):
            parts = [c.layers[index] for c in caches]
            pad = [(0, 0, width - p.keys.shape[-2], 0) for p in parts]
            keys = torch.cat([F.pad(p.keys, d) for p, d in zip(parts, pad, strict=True)])
            values = torch.cat([F.pad(p.values, d) for p, d in zip(parts, pad, strict=True)])
            merged.update(keys, values, index)
        return merged

    def step(
        self, tokens: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        """Feed one token per row (``tokens``, ``positions``: ``(B,)``); return the next logits."""
        return self._forward(tokens[:, None], mask, positions[:, None], cache)


def _decode_batch(
    decoder: _Decoder,
    prompts: Sequence[Sequence[int]],
    row_prompt: Sequence[int],
    keys: np.ndarray,
    sampling: Sampling,
    stop: set[int],
    observe: Observer | None = None,
    row_numbers: Sequence[int] | None = None,
) -> list[list[int]]:
    """New token ids (stop token dropped) of each row; row ``r`` continues ``prompts[row_prompt[r]]``.

    ``prompts`` are sorted by ascending length; ``keys`` (``uint64``, one per row) drive the draws.
    """
    cache, logits, mask, positions = decoder.prefill(prompts)
    index = torch.tensor(row_prompt, dtype=torch.long, device=decoder.device)
    cache = decoder.expand(cache, index, sampling.max_new_tokens)
    logits, mask, positions = logits[index], mask[index], positions[index]
    numbers = list(range(len(row_prompt))) if row_numbers is None else list(row_numbers)
    alive = list(range(len(row_prompt)))
    out: list[list[int]] = [[] for _ in row_prompt]
    for step in range(sampling.max_new_tokens):
        if observe is not None:
            observe(step, [numbers[r] for r in alive], logits)
        tokens = sample_nucleus(
            logits,
            step_keys(keys[alive], step),
            sampling.top_p,
            sampling.temperature,
            sampling.top_k_cut,
        )
        keep = []
        for j, (row, token) in enumerate(zip(alive, tokens.tolist(), strict=True)):
            if token not in stop:
                out[row].append(token)
                if len(out[row]) < sampling.max_new_tokens:
                    keep.append(j)
        if not keep:
            break
        if len(keep) < len(alive):
            # Finished rows leave the batch: their share of every later forward would be waste.
            chosen = torch.tensor(keep, dtype=torch.long, device=decoder.device)
            cache.batch_select_indices(chosen)
            tokens, mask, positions = tokens[chosen], mask[chosen], positions[chosen]
            alive = [alive[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
        logits = decoder.step(tokens, mask, positions, cache)
        positions = positions + 1
    return out


def _check_counts(samples: int, batch_size: int) -> None:
    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")


def sample_continuations(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    prompt_ids: Sequence[str],
    samples: int,
    seed: int,
    sampling: Sampling,
    batch_size: int,
    observe: Observer | None = None,
    progress: str | None = None,
    long_prompts: str = "truncate",
    encoded: Sequence[list[int]] | None = None,
) -> list[list[list[int]]]:
    """Token ids of ``samples`` continuations of each prompt: ``result[prompt][sample]``.

    A continuation holds its new tokens up to, not including, its first stop token (the EOS ids of
    model and tokenizer), at most ``sampling.max_new_tokens``; it depends only on the model, the
    prompt, ``(seed, prompt_ids[i], sample)``, never on ``batch_size`` (rows per decode batch) or
    on which other prompts are given. ``observe`` (for tests) sees every step's logits, with the
    row numbers ``prompt * samples + sample``; ``progress`` labels a progress bar (None: none).
    A prompt too long for the model's context with its continuation is handled by
    :func:`fit_context` (``long_prompts``); ``encoded`` gives the prompts' token ids from
    :func:`prompt_token_ids` when the caller has them already (None: computed here). Runs on the
    model's device in the model's dtype.
    """
    _check_counts(samples, batch_size)
    if len(prompt_ids) != len(prompts):
        raise InputError(f"{len(prompts)} prompts but {len(prompt_ids)} prompt ids")
    if encoded is None:
        encoded = prompt_token_ids(
            model, tokenizer, prompts, prompt_ids, sampling.max_new_tokens, long_prompts
        )
    elif len(encoded) != len(prompts):
        raise InputError(f"{len(prompts)} prompts but {len(encoded)} encoded prompts")
    rows = sorted((len(encoded[p]), p, s) for p in range(len(prompts)) for s in range(samples))
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    decoder, stop = _Decoder(model, pad), set(_stop_ids(model, tokenizer))
    out: list[list[list[int]]] = [[[] for _ in range(samples)] for _ in prompts]
    with torch.inference_mode(), _blocked_head(model):
        for batch in tqdm(batches, desc=progress, disable=progress is None, unit="batch"):
            unique = list(dict.fromkeys(p for _, p, _ in batch))
            where = {p: i for i, p in enumerate(unique)}
            keys = np.array([row_key(seed, prompt_ids[p], s) for _, p, s in batch], np.uint64)
            tokens = _decode_batch(
                decoder,
                [encoded[p] for p in unique],
                [where[p] for _, p, _ in batch],
                keys,
                sampling,
                stop,
                observe,
                [p * samples + s for _, p, s in batch],
            )
            for (_, p, s), ids in zip(batch, tokens, strict=True):
                out[p][s] = ids
    return out


def _read_prompts(prompts_path: Path, shard: tuple[int, int] | None) -> list[dict[str, Any]]:
    """The prompts of the file (``prompt_id``, ``text``), cut to the shard; InputError naming it."""
    prompts = read_jsonl(prompts_path, required=("prompt_id", "text"))
    if not prompts:
        raise InputError(f"{prompts_path}: no prompts")
    ids = [str(p["prompt_id"]) for p in prompts]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{prompts_path}: duplicate prompt_id {dup!r}")
    if shard is not None:
        shard_index, shard_size = shard
        prompts = prompts[shard_index * shard_size : (shard_index + 1) * shard_size]
        if not prompts:
            raise InputError(f"{prompts_path}: shard {shard_index} (size {shard_size}) is empty")
    return prompts


def generate_continuations(
    model_dir: Path,
    prompts_path: Path,
    out_path: Path,
    samples: int,
    top_p: float,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    device: str | None = None,
    shard: tuple[int, int] | None = None,
    top_k_cut: int = TOP_K_CUT,
    long_prompts: str = "truncate",
) -> int:
    """Sample ``samples`` continuations of every prompt and write them as JSON lines.

    Sampling is exact nucleus sampling (``top_p``, ``temperature``, top-k off; see
    :mod:`compfair.sampling`), each continuation keyed by ``(seed, prompt_id, sample)``, so the
    file does not depend on ``batch_size`` (rows per decode batch), the shard size or the prompt
    order. Output rows are ``{"prompt_id", "sample", "prompt", "continuation", "n_new_tokens",
    "prompt_token_ids", "continuation_token_ids"}`` ordered by (prompt order, sample):
    ``prompt_token_ids`` are the ids the model was conditioned on (after :func:`fit_context`),
    ``continuation_token_ids`` the sampled ids before decoding (stop token dropped), so the
    teacher can score exactly what was drawn. Empty continuations are kept (an immediate EOS
    gives ``("", 0)`` and no ids). ``device`` defaults to CUDA when available, else where the model was loaded.
    ``shard=(index, size)`` keeps only prompts ``index * size .. (index + 1) * size - 1`` of the
    file (an empty shard is an error), so that a prompt set can be generated by many jobs.
    Returns the number of rows written.
    """
    model_dir, prompts_path, out_path = Path(model_dir), Path(prompts_path), Path(out_path)
    _check_counts(samples, batch_size)
    sampling = Sampling(float(top_p), float(temperature), int(max_new_tokens), int(top_k_cut))
    prompts = _read_prompts(prompts_path, shard)
    model, tokenizer = load_model(model_dir)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else str(next(model.parameters()).device)
    model.to(device)
    model.eval()
    log.info(
        "generating %d prompts x %d samples = %d continuations with %s on %s (batch %d)",
        *(len(prompts), samples, len(prompts) * samples, model_dir, device, batch_size),
    )
    started = time.perf_counter()
    texts, ids = [p["text"] for p in prompts], [str(p["prompt_id"]) for p in prompts]
    encoded = prompt_token_ids(model, tokenizer, texts, ids, sampling.max_new_tokens, long_prompts)
    tokens = sample_continuations(
        model,
        tokenizer,
        texts,
        ids,
        samples,
        seed,
        sampling,
        batch_size,
        progress=f"generate {out_path.parent.name}/{out_path.stem}",
        encoded=encoded,
    )
    rows = _output_rows(prompts, encoded, tokens, tokenizer)
    elapsed = time.perf_counter() - started
    n_tokens = sum(r["n_new_tokens"] for r in rows)
    log.info(
        "generated %d new tokens in %.1f s (%.1f tokens/s); %d empty continuations kept",
        *(n_tokens, elapsed, n_tokens / max(elapsed, 1e-9)),
        sum(1 for r in rows if not r["continuation"]),
    )
    return write_jsonl(out_path, rows)


def _output_rows(
    prompts: Sequence[dict[str, Any]],
    encoded: Sequence[list[int]],
    tokens: Sequence[Sequence[list[int]]],
    tokenizer: Any,
) -> list[dict[str, Any]]:
    """The file's rows in (prompt, sample) order; only new tokens decoded, special tokens skipped."""
    return [
        {
            "prompt_id": str(prompt["prompt_id"]),
            "sample": k,
            "prompt": prompt["text"],
            "continuation": tokenizer.decode(ids, skip_special_tokens=True),
            "n_new_tokens": len(ids),
            "prompt_token_ids": [int(t) for t in head],
            "continuation_token_ids": [int(t) for t in ids],
        }
        for prompt, head, continuations in zip(prompts, encoded, tokens, strict=True)
        for k, ids in enumerate(continuations)
    ]
