"""Tests for compfair.generate: seeded batched sampling, left padding, empty continuations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

from compfair.generate import batch_seed, generate_batch, generate_continuations, prepare_tokenizer
from compfair.io import InputError, write_jsonl
from compfair.models import gpt2_tokenizer


def _tiny_tokenizer(folder: Path) -> GPT2Tokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    return gpt2_tokenizer()


def _tiny_model(tokenizer: GPT2Tokenizer, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.2,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> GPT2Tokenizer:
    return _tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: GPT2Tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("model")
    _tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    write_jsonl(
        path,
        [
            {"prompt_id": "p1", "text": "The weather today is"},
            {"prompt_id": "p2", "text": "She said that the long and winding road was"},
            {"prompt_id": "p3", "text": "Hi"},
        ],
    )
    return path


def _gen(model_dir: Path, prompts: Path, out: Path, seed: int, **kw) -> int:
    args = {"samples": 2, "top_p": 0.9, "temperature": 1.0, "max_new_tokens": 5, "batch_size": 4}
    args.update(kw)
    return generate_continuations(model_dir, prompts, out, seed=seed, **args)


def test_rows_order_and_determinism(model_dir: Path, prompts: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert _gen(model_dir, prompts, a, seed=1) == 6
    _gen(model_dir, prompts, b, seed=1)
    _gen(model_dir, prompts, c, seed=2)
    assert a.read_bytes() == b.read_bytes()
    rows = [json.loads(line) for line in a.read_text().splitlines()]
    other = [json.loads(line) for line in c.read_text().splitlines()]
    assert [(r["prompt_id"], r["sample"]) for r in rows] == [
        ("p1", 0),
        ("p1", 1),
        ("p2", 0),
        ("p2", 1),
        ("p3", 0),
        ("p3", 1),
    ]
    assert set(rows[0]) == {"prompt_id", "sample", "prompt", "continuation", "n_new_tokens"}
    assert rows[2]["prompt"] == "She said that the long and winding road was"
    assert all(0 <= r["n_new_tokens"] <= 5 for r in rows)
    assert [r["continuation"] for r in rows] != [r["continuation"] for r in other]
    # the two samples of a prompt are different draws
    assert rows[0]["continuation"] != rows[1]["continuation"]


def test_k_samples_per_prompt(model_dir: Path, prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    assert _gen(model_dir, prompts, out, seed=0, samples=5, batch_size=3) == 15
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for pid in ("p1", "p2", "p3"):
        assert [r["sample"] for r in rows if r["prompt_id"] == pid] == [0, 1, 2, 3, 4]


def test_empty_continuations_are_kept(
    tokenizer: GPT2Tokenizer, prompts: Path, tmp_path: Path
) -> None:
    # Make EOS win every step: constant final hidden state pointing along EOS's embedding.
    model = _tiny_model(tokenizer)
    with torch.no_grad():
        v = torch.randn(model.config.n_embd)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(v)
        model.transformer.wte.weight[tokenizer.eos_token_id] = 100 * v
    folder = tmp_path / "eos_model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "g.jsonl"
    assert _gen(folder, prompts, out, seed=0, samples=3) == 9
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 9
    assert all(r["continuation"] == "" and r["n_new_tokens"] == 0 for r in rows)


def test_left_padding_gives_same_greedy_continuation(tokenizer: GPT2Tokenizer) -> None:
    model = _tiny_model(tokenizer, seed=3)
    tok = prepare_tokenizer(tokenizer)
    short, long = "Hello there", "Once upon a time in a land far far away there lived"
    alone = generate_batch(model, tok, [short], do_sample=False, max_new_tokens=8)
    batched = generate_batch(model, tok, [long, short], do_sample=False, max_new_tokens=8)
    assert batched[1] == alone[0]
    assert alone[0][1] > 0
    assert generate_batch(model, tok, [long], do_sample=False, max_new_tokens=8)[0] == batched[0]


def test_batch_seed_is_stable_and_distinct() -> None:
    assert batch_seed(1, 0) == batch_seed(1, 0)
    assert len({batch_seed(s, b) for s in range(3) for b in range(3)}) == 9


def test_bad_arguments(model_dir: Path, prompts: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        _gen(model_dir, prompts, tmp_path / "x.jsonl", seed=0, samples=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "a"}\n')
    with pytest.raises(InputError, match="line 1"):
        _gen(model_dir, bad, tmp_path / "x.jsonl", seed=0)
    assert not (tmp_path / "x.jsonl").exists()
