"""Batched, seeded nucleus sampling of prompt continuations.

Every prompt gets ``samples`` continuations (RealToxicityPrompts uses K = 25).
The (prompt, sample) pairs are laid out in prompt order, cut into batches of
``batch_size`` and generated with left padding, so a row's position in the
batch never changes the tokens its prompt is conditioned on. Each batch
re-seeds the random number generators from ``(seed, batch index)``: the same
seed and batch size give the same file, and a batch does not depend on how
much randomness the earlier batches consumed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from compfair.io import InputError, read_jsonl, set_seed, write_jsonl
from compfair.models import load_model

log = logging.getLogger(__name__)


def batch_seed(seed: int, batch_index: int) -> int:
    """Derive the seed of one batch from the run seed and the batch index.

    A hash (rather than ``seed + batch_index``) keeps the streams of runs with
    neighbouring seeds unrelated.
    """
    digest = hashlib.sha256(f"{seed}:{batch_index}".encode()).hexdigest()
    return int(digest[:15], 16)


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


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Set left padding and, when the tokenizer has none, pad with EOS."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise InputError("tokenizer has neither a pad nor an EOS token; cannot batch prompts")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _encode_left_padded(
    tokenizer: Any, prompts: Sequence[str], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise ``prompts`` and left-pad them into ``(input_ids, attention_mask)``.

    Both tensors have shape ``(len(prompts), longest prompt)``. An empty prompt
    is conditioned on the BOS token (EOS when there is no BOS), since a model
    cannot continue zero tokens.
    """
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [list(tokenizer(p)["input_ids"]) or [start] for p in prompts]
    width = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    return input_ids.to(device), attention.to(device)


@torch.no_grad()
def generate_batch(
    model: Any, tokenizer: Any, prompts: Sequence[str], **generate_kwargs: Any
) -> list[tuple[str, int]]:
    """Continue each prompt once; return ``(continuation text, n_new_tokens)`` per prompt.

    The tokenizer must already be prepared (:func:`prepare_tokenizer`).
    ``generate_kwargs`` go to ``model.generate`` (e.g. ``do_sample=False`` for
    greedy decoding). Only the new tokens are decoded, with special tokens
    skipped; a continuation ends at its first EOS, which is not counted in
    ``n_new_tokens`` (so an immediate EOS gives ``("", 0)``).
    """
    device = next(model.parameters()).device
    input_ids, attention = _encode_left_padded(tokenizer, prompts, device)
    stop = _stop_ids(model, tokenizer)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop or None,
        **generate_kwargs,
    )
    new = out[:, input_ids.shape[1] :].tolist()
    results = []
    stop_set = set(stop)
    for ids in new:
        end = next((i for i, t in enumerate(ids) if t in stop_set), len(ids))
        kept = ids[:end]
        text = tokenizer.decode(kept, skip_special_tokens=True)
        results.append((text, len(kept)))
    return results


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
) -> int:
    """Sample ``samples`` continuations of every prompt and write them as JSON lines.

    Sampling is nucleus sampling (``top_p``, ``temperature``, top-k off).
    Output rows are ``{"prompt_id", "sample", "prompt", "continuation",
    "n_new_tokens"}`` ordered by (prompt order, sample); empty continuations
    are kept. ``device`` defaults to CUDA when available, else where the model
    was loaded. ``shard=(index, size)`` keeps only prompts
    ``index * size .. (index + 1) * size - 1`` of the file (an empty shard is an
    error), so that a prompt set can be generated by many jobs. Returns the
    number of rows written.
    """
    model_dir, prompts_path, out_path = Path(model_dir), Path(prompts_path), Path(out_path)
    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 < top_p <= 1.0:
        raise InputError(f"top_p must be in (0, 1], got {top_p}")
    if temperature <= 0.0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    prompts = read_jsonl(prompts_path, required=("prompt_id", "text"))
    if not prompts:
        raise InputError(f"{prompts_path}: no prompts")
    ids = [str(p["prompt_id"]) for p in prompts]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{prompts_path}: duplicate prompt_id {dup!r}")
    shard_index = 0
    if shard is not None:
        shard_index, shard_size = shard
        prompts = prompts[shard_index * shard_size : (shard_index + 1) * shard_size]
        if not prompts:
            raise InputError(f"{prompts_path}: shard {shard_index} (size {shard_size}) is empty")

    model, tokenizer = load_model(model_dir)
    prepare_tokenizer(tokenizer)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else str(next(model.parameters()).device)
    model.to(device)
    model.eval()

    pairs = [(p, k) for p in prompts for k in range(samples)]
    # Pin every sampling knob so a model's own generation_config cannot change it.
    gen_kwargs = {
        "do_sample": True,
        "top_p": float(top_p),
        "top_k": 0,  # off: pure nucleus sampling as in RealToxicityPrompts
        "temperature": float(temperature),
        "max_new_tokens": int(max_new_tokens),
        "min_new_tokens": 0,
        "num_beams": 1,
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
    }
    log.info(
        "generating %d prompts x %d samples = %d continuations with %s on %s (batch %d)",
        len(prompts),
        samples,
        len(pairs),
        model_dir,
        device,
        batch_size,
    )
    rows: list[dict[str, Any]] = []
    n_tokens = 0
    started = time.perf_counter()
    n_batches = (len(pairs) + batch_size - 1) // batch_size
    for b in tqdm(
        range(n_batches), desc=f"generate {out_path.parent.name}/{out_path.stem}", unit="batch"
    ):
        batch = pairs[b * batch_size : (b + 1) * batch_size]
        # The shard index keeps the batches of different shards on different streams.
        set_seed(batch_seed(seed, b) if shard_index == 0 else batch_seed(batch_seed(seed, shard_index), b))
        outputs = generate_batch(model, tokenizer, [p["text"] for p, _ in batch], **gen_kwargs)
        for (prompt, k), (text, n_new) in zip(batch, outputs, strict=True):
            rows.append(
                {
                    "prompt_id": str(prompt["prompt_id"]),
                    "sample": k,
                    "prompt": prompt["text"],
                    "continuation": text,
                    "n_new_tokens": n_new,
                }
            )
            n_tokens += n_new
    elapsed = time.perf_counter() - started
    n_empty = sum(1 for r in rows if not r["continuation"])
    log.info(
        "generated %d new tokens in %.1f s (%.1f tokens/s); %d empty continuations kept",
        n_tokens,
        elapsed,
        n_tokens / max(elapsed, 1e-9),
        n_empty,
    )
    return write_jsonl(out_path, rows)
