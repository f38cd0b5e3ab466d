"""Tests for compfair.generate: keyed nucleus sampling with a KV-cache decode loop.

On tiny random GPT-2 and Llama models: the file does not depend on batch or shard size or prompt
order; a tiny top_p reproduces HF's greedy ``generate`` under left padding; the logits of every
step equal a full forward without cache; stop tokens end rows; empty prompts start from BOS.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Tokenizer, PreTrainedModel

from compfair.generate import (
    Sampling,
    _ChunkedHead,
    _length_groups,
    _stop_ids,
    encode_prompts,
    generate_continuations,
    sample_continuations,
)
from compfair.io import InputError, write_jsonl
from compfair.models import load_model
from compfair.sampling import row_key, sample_nucleus, step_keys
from tests.support import make

TEXTS = [
    "Hi",
    "Hi there",
    "The weather today is",
    "She said that the long and winding road was",
    "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen",
]
IDS = ["p1", "p2", "p3", "p4", "p5"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and lose much to them on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(family: str, tokenizer: GPT2Tokenizer) -> PreTrainedModel:
    """A random 2-layer, 32-wide model of GPT-2's vocabulary, weights drawn wide (std 0.2);
    BOS = EOS = ``<|endoftext|>``; GPT-2 with 2 heads, Llama with no pad token."""
    eos = tokenizer.eos_token_id
    extra = {"n_head": 2} if family == "gpt2" else {"pad_token_id": None}
    return make(
        family,
        vocab_size=len(tokenizer),
        bos_token_id=eos,
        eos_token_id=eos,
        initializer_range=0.2,
        **extra,
    )


def _peaked(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the final norm so a random model's nucleus holds a few tokens, not half the vocab.

    Logits of different batch shapes differ in the last bits; over a flat nucleus of 25k tokens
    that flips about one draw in a hundred, over a peaked one about one in a million.
    """
    norm = model.transformer.ln_f if hasattr(model, "transformer") else model.model.norm
    with torch.no_grad():
        norm.weight.mul_(6.0)
    return model


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory, gpt2_tok: GPT2Tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("gpt2")
    _peaked(_tiny("gpt2", gpt2_tok)).save_pretrained(folder)
    gpt2_tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory, gpt2_tok: GPT2Tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("llama")
    _peaked(_tiny("llama", gpt2_tok)).save_pretrained(folder)
    gpt2_tok.save_pretrained(folder)
    return folder


@pytest.fixture(params=["gpt2", "llama"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_dir")


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    write_jsonl(path, [{"prompt_id": i, "text": t} for i, t in zip(IDS, TEXTS, strict=True)])
    return path


def _gen(model_dir: Path, prompts: Path, out: Path, seed: int = 1, **kw) -> int:
    args = {"samples": 2, "top_p": 0.9, "temperature": 1.0, "max_new_tokens": 5, "batch_size": 4}
    args.update(kw)
    return generate_continuations(model_dir, prompts, out, seed=seed, **args)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rows_order_and_determinism(gpt2_dir: Path, prompts: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert _gen(gpt2_dir, prompts, a, seed=1) == 10
    _gen(gpt2_dir, prompts, b, seed=1)
    _gen(gpt2_dir, prompts, c, seed=2)
    assert a.read_bytes() == b.read_bytes()
    rows, other = _rows(a), _rows(c)
    assert [(r["prompt_id"], r["sample"]) for r in rows] == [(i, k) for i in IDS for k in (0, 1)]
    assert set(rows[0]) == {
        "prompt_id",
        "sample",
        "prompt",
        "continuation",
        "n_new_tokens",
        "prompt_token_ids",
        "continuation_token_ids",
    }
    assert rows[6]["prompt"] == TEXTS[3]
    assert all(r["n_new_tokens"] == 5 for r in rows)  # this model never picks EOS
    assert [r["continuation"] for r in rows] != [r["continuation"] for r in other]
    assert rows[0]["continuation"] != rows[1]["continuation"]  # two samples, two draws


def test_rows_keep_the_token_ids_as_drawn(gpt2_dir: Path, prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    _gen(gpt2_dir, prompts, out, seed=3)
    model, tok = load_model(gpt2_dir)
    rows = _rows(out)
    assert len(rows) == 2 * len(IDS)  # the checks below run on every row
    # the ids the model was conditioned on, and the ids it drew, as sample_continuations gives them
    drawn = sample_continuations(model, tok, TEXTS, IDS, 2, 3, Sampling(0.9, 1.0, 5), batch_size=4)
    for row in rows:
        p = IDS.index(row["prompt_id"])
        assert row["prompt_token_ids"] == encode_prompts(tok, [TEXTS[p]])[0]
        assert row["continuation_token_ids"] == drawn[p][row["sample"]]
        assert len(row["continuation_token_ids"]) == row["n_new_tokens"]
        assert tok.decode(row["continuation_token_ids"]) == row["continuation"]


def test_k_samples_per_prompt(gpt2_dir: Path, prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    assert _gen(gpt2_dir, prompts, out, seed=0, samples=5, batch_size=3) == 25
    rows = _rows(out)
    for pid in IDS:
        assert [r["sample"] for r in rows if r["prompt_id"] == pid] == [0, 1, 2, 3, 4]


def test_file_does_not_depend_on_batch_or_shard_size(
    model_dir: Path, prompts: Path, tmp_path: Path
) -> None:
    whole_3, whole_16 = tmp_path / "w3.jsonl", tmp_path / "w16.jsonl"
    _gen(model_dir, prompts, whole_3, batch_size=3)
    _gen(model_dir, prompts, whole_16, batch_size=16, shard=(0, 5))
    parts = [tmp_path / f"s{i}.jsonl" for i in (0, 1, 2)]
    for i, part in enumerate(parts):
        _gen(model_dir, prompts, part, batch_size=1, shard=(i, 2))
    assert whole_3.read_bytes() == whole_16.read_bytes()
    assert whole_3.read_bytes() == b"".join(part.read_bytes() for part in parts)
    assert len(_rows(whole_3)) == 10


def test_prompt_order_does_not_change_a_continuation(
    model_dir: Path, prompts: Path, tmp_path: Path
) -> None:
    reversed_prompts = tmp_path / "reversed.jsonl"
    reversed_prompts.write_text("".join(reversed(prompts.read_text().splitlines(True))))
    forward, backward = tmp_path / "f.jsonl", tmp_path / "b.jsonl"
    _gen(model_dir, prompts, forward, samples=3, batch_size=5)
    _gen(model_dir, reversed_prompts, backward, samples=3, batch_size=5)
    f_rows, b_rows = _rows(forward), _rows(backward)
    assert [r["prompt_id"] for r in b_rows][::3] == IDS[::-1]
    key = lambda r: (r["prompt_id"], r["sample"])  # noqa: E731
    assert sorted(f_rows, key=key) == sorted(b_rows, key=key)


def _hf_greedy(model, tok, texts: list[str], max_new: int) -> list[list[int]]:
    enc = tok(texts, return_tensors="pt", padding=True)
    stop = _stop_ids(model, tok)
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=max_new,
            pad_token_id=tok.pad_token_id,
            eos_token_id=stop,
        )
    news = out[:, enc["input_ids"].shape[1] :].tolist()
    return [n[: next((j for j, t in enumerate(n) if t in stop), len(n))] for n in news]


def test_tiny_top_p_is_hf_greedy_under_left_padding(model_dir: Path) -> None:
    model, tok = load_model(model_dir)
    assert tok.padding_side == "left"
    expected = _hf_greedy(model, tok, TEXTS, max_new=8)
    ours = sample_continuations(model, tok, TEXTS, IDS, 2, 0, Sampling(1e-9, 1.0, 8), 3)
    assert [per[0] for per in ours] == expected
    assert [per[1] for per in ours] == expected
    assert all(len(e) == 8 for e in expected)


def test_logits_of_every_step_equal_a_full_forward(model_dir: Path) -> None:
    model, tok = load_model(model_dir)
    seen: dict[tuple[int, int], torch.Tensor] = {}

    def observe(step: int, rows: list[int], logits: torch.Tensor) -> None:
        for row, row_logits in zip(rows, logits, strict=True):
            seen[(row, step)] = row_logits.clone()

    sampling = Sampling(0.9, 1.0, 6)
    out = sample_continuations(model, tok, TEXTS, IDS, 2, 3, sampling, 5, observe=observe)
    lengths = [len(t) for t in encode_prompts(tok, TEXTS)]
    assert lengths == [1, 2, 4, 9, 15]
    # "Hi" and "Hi there" share a left-padded prefill; the groups' caches are merged
    assert _length_groups(lengths) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert len(seen) == 10 * 6
    encoded = encode_prompts(tok, TEXTS)
    with torch.no_grad():
        for p, per in enumerate(out):
            for s, ids in enumerate(per):
                for step in range(6):
                    full = torch.tensor([encoded[p] + ids[:step]])
                    want = model(input_ids=full).logits[0, -1]
                    assert torch.allclose(seen[(2 * p + s, step)], want, atol=1e-4, rtol=1e-4)


def _eos_prone_llama(model_dir: Path, bias: float) -> tuple[torch.nn.Module, GPT2Tokenizer]:
    model, tok = load_model(model_dir)
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tok.eos_token_id] = bias
    model.lm_head = head
    return model, tok


def test_stop_tokens_end_rows_and_are_dropped(tiny_llama_dir: Path) -> None:
    model, tok = _eos_prone_llama(tiny_llama_dir, bias=9.0)
    stop = set(_stop_ids(model, tok))
    assert stop == {2, tok.eos_token_id}
    seen: dict[tuple[int, int], torch.Tensor] = {}

    def observe(step: int, rows: list[int], logits: torch.Tensor) -> None:
        seen.update({(r, step): lg.clone() for r, lg in zip(rows, logits, strict=True)})

    sampling = Sampling(0.9, 1.0, 8)
    out = sample_continuations(model, tok, TEXTS, IDS, 4, 5, sampling, 6, observe=observe)
    lengths = [len(c) for per in out for c in per]
    assert min(lengths) == 0 and max(lengths) == 8 and 0 < lengths.count(8) < 20
    for p, per in enumerate(out):
        for s, ids in enumerate(per):
            row, key = 4 * p + s, np.array([row_key(5, IDS[p], s)], np.uint64)
            assert not stop & set(ids)
            # replay the draws: the kept tokens, then (when short) a stop token, then nothing
            steps = sorted(t for r, t in seen if r == row)
            assert steps == list(range(min(len(ids) + 1, 8)))
            for t in steps:
                token = int(sample_nucleus(seen[(row, t)][None, :], step_keys(key, t), 0.9)[0])
                assert token == ids[t] if t < len(ids) else token in stop


def test_immediate_eos_gives_empty_continuations(
    gpt2_tok: GPT2Tokenizer, prompts: Path, tmp_path: Path
) -> None:
    # Make EOS win every step: constant final hidden state pointing along EOS's embedding.
    model = _tiny("gpt2", gpt2_tok)
    with torch.no_grad():
        v = torch.randn(model.config.n_embd)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(v)
        model.transformer.wte.weight[gpt2_tok.eos_token_id] = 100 * v
    folder = tmp_path / "eos_model"
    model.save_pretrained(folder)
    gpt2_tok.save_pretrained(folder)
    out = tmp_path / "g.jsonl"
    assert _gen(folder, prompts, out, seed=0, samples=3) == 15
    assert all(r["continuation"] == "" and r["n_new_tokens"] == 0 for r in _rows(out))


class _NoBosTokenizer:
    """Encodes every text to no tokens; has no BOS token."""

    bos_token_id = None

    def __init__(self, eos: int | None) -> None:
        self.eos_token_id = eos

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": []}


def test_empty_prompt_is_conditioned_on_bos(tiny_llama_dir: Path) -> None:
    model, tok = load_model(tiny_llama_dir)
    assert encode_prompts(tok, ["", "Hi"]) == [[tok.bos_token_id], tok("Hi")["input_ids"]]
    assert encode_prompts(_NoBosTokenizer(eos=7), [""]) == [[7]]
    with pytest.raises(InputError, match="neither BOS nor EOS"):
        encode_prompts(_NoBosTokenizer(eos=None), [""])
    # greedy from "" is greedy from the BOS token itself
    sampling = Sampling(1e-9, 1.0, 6)
    empty = sample_continuations(model, tok, ["", "Hi"], ["e", "h"], 1, 0, sampling, 4)
    bos_text = tok.decode([tok.bos_token_id])
    assert tok(bos_text)["input_ids"] == [tok.bos_token_id]
    assert empty[0][0] == _hf_greedy(model, tok, [bos_text], max_new=6)[0]
    assert len(empty[0][0]) == 6


def test_blocked_head_is_the_head_and_is_restored(gpt2_dir: Path) -> None:
    model, tok = load_model(gpt2_dir)
    head = model.get_output_embeddings()
    x = torch.randn(3, 2, head.in_features)
    blocked = _ChunkedHead(head, rows=1000)  # 50,257 rows: 51 blocks, the last one short
    with torch.no_grad():
        assert torch.allclose(blocked(x), head(x), atol=1e-5, rtol=1e-5)
    sample_continuations(model, tok, TEXTS[:1], IDS[:1], 1, 0, Sampling(0.9, 1.0, 2), 1)
    assert model.get_output_embeddings() is head
    assert head.weight is model.transformer.wte.weight  # still tied


def test_length_groups_pad_little() -> None:
    assert _length_groups([10, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 44]) == [
        (0, 4),  # 10..12: 10 + max(2, 2)
        (4, 8),  # 14..17: 14 + max(2, 3)
        (8, 11),  # 18..20: 18 + 4 = 22
        (11, 12),
    ]
    assert _length_groups([1, 2, 3, 4]) == [(0, 3), (3, 4)]
    assert _length_groups([5]) == [(0, 1)]


def test_bad_arguments(gpt2_dir: Path, prompts: Path, tmp_path: Path) -> None:
    for kwargs, match in [
        ({"samples": 0}, "samples"),
        ({"batch_size": 0}, "batch_size"),
        ({"top_p": 0.0}, "top_p"),
        ({"temperature": 0.0}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"shard": (5, 2)}, "shard 5"),
    ]:
        with pytest.raises(InputError, match=match):
            _gen(gpt2_dir, prompts, tmp_path / "x.jsonl", **kwargs)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "a"}\n')
    with pytest.raises(InputError, match="line 1"):
        _gen(gpt2_dir, bad, tmp_path / "x.jsonl")
    dup = tmp_path / "dup.jsonl"
    write_jsonl(dup, [{"prompt_id": "a", "text": "x"}, {"prompt_id": "a", "text": "y"}])
    with pytest.raises(InputError, match="duplicate prompt_id 'a'"):
        _gen(gpt2_dir, dup, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_prompts_too_long_for_the_context_are_cut_from_the_left_or_rejected(caplog) -> None:
    from compfair.generate import fit_context

    encoded = [[1, 2, 3, 4, 5], [6, 7]]
    assert fit_context(encoded, ["a", "b"], None, "reject") == encoded  # no limit known
    with caplog.at_level("WARNING"):
        assert fit_context(encoded, ["a", "b"], 3, "truncate") == [[3, 4, 5], [6, 7]]
    assert "cut 1 prompt(s) from the left to 3 tokens, e.g. 'a'" in caplog.text
    with pytest.raises(
        InputError,
        match="prompt 'a' has 5 tokens; with the continuation the model's context allows 3",
    ):
        fit_context(encoded, ["a", "b"], 3, "reject")
    with pytest.raises(InputError, match="leaves no room"):
        fit_context(encoded, ["a", "b"], 0, "truncate")
