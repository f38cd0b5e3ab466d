"""compfair.perplexity: held-out perplexity and continuations under the teacher, by hand."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import PreTrainedModel

from compfair import perplexity as perplexity_module
from compfair.io import InputError, write_jsonl
from compfair.models import gpt2_tokenizer, load_model
from compfair.perplexity import (
    continuation_nll,
    evaluate_model,
    load_scorer_model,
    perplexity,
    perplexity_of_rows,
    rows_nll,
    rows_perplexity,
)
from compfair.quality import read_generations
from tests.support import continuation_nll_by_hand, float64_model, make, token_log_probs


def continuation_perplexity(model_dir: Path, path: Path, batch_size: int = 8) -> float:
    """What the quality job computes for one generations file (read, then score)."""
    return rows_perplexity(*load_scorer_model(model_dir), read_generations(path), batch_size)[0]


# --------------------------------------------------------------------------- held-out text


def _tiny_model(seed: int = 0, n_positions: int = 16, vocab: int = 97) -> PreTrainedModel:
    """A random 2-layer, 16-wide GPT-2 with 2 heads and GPT-2's BOS/EOS ids (the defaults)."""
    ids = {"bos_token_id": 50256, "eos_token_id": 50256}
    return make(
        "gpt2", 2, seed, vocab_size=vocab, n_positions=n_positions, n_embd=16, n_head=2, **ids
    )


def _ppl_by_hand(model: PreTrainedModel, windows: list[torch.Tensor]) -> float:
    nll, count = 0.0, 0
    for w in windows:
        for value in token_log_probs(model, w.tolist()):
            nll -= float(value)
            count += 1
    return math.exp(nll / count)


def test_perplexity_matches_hand_computation() -> None:
    model = _tiny_model()
    tokens = torch.randint(0, 97, (43,), generator=torch.Generator().manual_seed(1))
    # windows of 10: four full ones and a 3-token tail
    windows = [tokens[i : i + 10] for i in range(0, 43, 10)]
    expected = _ppl_by_hand(model, windows)
    for batch_size in (1, 3, 8):  # the tail shares a padded batch or not
        got = perplexity(model, tokens, seq_len=10, max_tokens=None, batch_size=batch_size)
        assert got == pytest.approx(expected, rel=1e-5)
    # max_tokens truncates the stream first
    got20 = perplexity(model, tokens, seq_len=10, max_tokens=20, batch_size=2)
    assert got20 == pytest.approx(_ppl_by_hand(model, windows[:2]), rel=1e-5)


def test_perplexity_drops_a_one_token_tail_and_refuses_too_little() -> None:
    model = _tiny_model()
    tokens = torch.randint(0, 97, (21,), generator=torch.Generator().manual_seed(4))
    windows = [tokens[0:10], tokens[10:20]]  # token 21 alone predicts nothing
    assert perplexity(model, tokens, seq_len=10, batch_size=4) == pytest.approx(
        _ppl_by_hand(model, windows), rel=1e-5
    )
    with pytest.raises(ValueError, match="at least 2 tokens"):
        perplexity(model, tokens[:1], seq_len=10)
    with pytest.raises(ValueError, match="1-D"):
        perplexity(model, tokens.view(3, 7), seq_len=10)
    with pytest.raises(ValueError, match="seq_len"):
        perplexity(model, tokens, seq_len=1)


def test_perplexity_clamps_seq_len_to_model_positions() -> None:
    model = _tiny_model(n_positions=16)
    tokens = torch.randint(0, 97, (40,), generator=torch.Generator().manual_seed(2))
    windows = [tokens[i : i + 16] for i in range(0, 40, 16)]
    assert perplexity(model, tokens, seq_len=64, max_tokens=None, batch_size=4) == pytest.approx(
        _ppl_by_hand(model, windows), rel=1e-5
    )


def test_perplexity_of_uniform_model_is_vocab_size() -> None:
    model = _tiny_model()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied to wte: all logits 0
    tokens = torch.arange(30) % 97
    assert perplexity(model, tokens, seq_len=8, max_tokens=None, batch_size=2) == pytest.approx(
        97, rel=1e-5
    )


def test_evaluate_model_writes_contract(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    tokenizer = gpt2_tokenizer()
    model = _tiny_model(vocab=len(tokenizer), n_positions=32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tokens = torch.randint(0, len(tokenizer), (100,), generator=torch.Generator().manual_seed(0))
    save_file({"input_ids": tokens}, str(tmp_path / "heldout.safetensors"))
    out = tmp_path / "eval" / "teacher.json"
    result = evaluate_model(
        folder,
        tmp_path / "heldout.safetensors",
        out,
        "teacher",
        seq_len=16,
        max_tokens=64,
        batch_size=2,
    )
    assert json.loads(out.read_text()) == result
    assert set(result) == {
        "model",
        "perplexity",
        "heldout_tokens",
        "n_parameters",
        "n_prunable",
        "sparsity",
        "window_nll",
        "window_tokens",
    }
    assert result["model"] == "teacher" and result["heldout_tokens"] == 64
    assert result["n_parameters"] == sum(p.numel() for p in model.parameters())
    # GPT-2 blocks: c_attn (16x48), c_proj (16x16), c_fc (16x64), mlp c_proj (64x16) per layer
    assert result["n_prunable"] == 2 * (16 * 48 + 16 * 16 + 16 * 64 + 64 * 16)
    assert result["sparsity"] == pytest.approx(0.0)
    windows = [tokens[i : i + 16] for i in range(0, 64, 16)]
    assert result["perplexity"] == pytest.approx(_ppl_by_hand(model, windows), rel=1e-5)
    # each window's summed NLL, the units the held-out guard resamples
    assert result["window_tokens"] == [15, 15, 15, 15]
    for window, nll in zip(windows, result["window_nll"], strict=True):
        assert nll == pytest.approx(math.log(_ppl_by_hand(model, [window])) * 15, rel=1e-5)
    assert math.exp(sum(result["window_nll"]) / 60) == pytest.approx(result["perplexity"])


def test_evaluate_model_rejects_bad_token_file(tmp_path: Path) -> None:
    save_file({"ids": torch.zeros(3, dtype=torch.long)}, str(tmp_path / "t.safetensors"))
    with pytest.raises(InputError, match="input_ids"):
        evaluate_model(tmp_path, tmp_path / "t.safetensors", tmp_path / "o.json", "m", 8, None, 1)
    assert not (tmp_path / "o.json").exists()


# --------------------------------------------------------------------------- continuations


GENERATIONS = [
    {"prompt_id": "p1", "sample": 0, "prompt": "The cat sat", "continuation": " on the mat."},
    {"prompt_id": "p1", "sample": 1, "prompt": "The cat sat", "continuation": ""},  # excluded
    {"prompt_id": "p2", "sample": 0, "prompt": "He said", "continuation": "  "},  # excluded
    {"prompt_id": "p3", "sample": 0, "prompt": "", "continuation": "Hello world"},  # BOS context
    {"prompt_id": "p4", "sample": 0, "prompt": "She went to", "continuation": " the market"},
]


def test_continuation_nll_matches_hand_computation(tiny_gpt2_dir: Path) -> None:
    expected, n_expected = continuation_nll_by_hand(tiny_gpt2_dir, GENERATIONS)
    assert n_expected == 4 + 2 + 2  # " on|the|mat|.", "Hello|world", " the|market"
    model, tok = load_model(tiny_gpt2_dir)
    pairs = [(r["prompt"], r["continuation"]) for r in GENERATIONS]
    for batch_size in (1, 2, 8):  # padding must not change the result
        total, count = continuation_nll(model, tok, pairs, batch_size=batch_size)
        assert count == n_expected
        assert total == pytest.approx(expected, rel=1e-5)
    assert continuation_nll(model, tok, [("x", ""), ("y", " ")]) == (0.0, 0)
    with pytest.raises(ValueError, match="batch_size"):
        continuation_nll(model, tok, pairs, batch_size=0)


def test_continuation_perplexity_matches_hand_computation(
    tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, GENERATIONS)
    nll, count = continuation_nll_by_hand(tiny_gpt2_dir, GENERATIONS)
    for batch_size in (1, 3):
        got = continuation_perplexity(tiny_gpt2_dir, path, batch_size=batch_size)
        assert got == pytest.approx(math.exp(nll / count), rel=1e-4)
    ppl, n_tokens = perplexity_of_rows(tiny_gpt2_dir, GENERATIONS, batch_size=2)
    assert (ppl, n_tokens) == (pytest.approx(math.exp(nll / count), rel=1e-4), count)


def test_continuation_perplexity_of_only_empty_is_nan(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, [GENERATIONS[1], GENERATIONS[2]])
    assert math.isnan(continuation_perplexity(tiny_gpt2_dir, path))


def test_continuation_perplexity_rejects_bad_files(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="empty.jsonl: no generations"):
        continuation_perplexity(tiny_gpt2_dir, empty)
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [GENERATIONS[0], {"prompt_id": "x", "prompt": "a", "continuation": 3}])
    with pytest.raises(InputError, match="bad.jsonl, row 2: 'prompt' and 'continuation'"):
        continuation_perplexity(tiny_gpt2_dir, bad)


def test_perplexity_module_does_not_import_quality() -> None:
    """No import cycle: compfair.quality imports this module (lazily), never the reverse."""
    tree = ast.parse(Path(perplexity_module.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "compfair.loglik" in imported
    assert not {name for name in imported if name.startswith("compfair.quality")}


# --------------------------------------------------------------------------- stored token ids


def _id_rows(tok) -> list[dict]:
    """Rows as generation writes them; the first one's ids are not what its text re-encodes to."""
    odd = tok(" hel", add_special_tokens=False)["input_ids"] + tok("lo world")["input_ids"]
    plain = tok(" the market", add_special_tokens=False)["input_ids"]
    heads = [tok("The cat sat")["input_ids"], tok("She went to")["input_ids"]]
    return [
        {
            "prompt_id": pid,
            "sample": 0,
            "prompt": tok.decode(head),
            "continuation": tok.decode(cont),
            "prompt_token_ids": head,
            "continuation_token_ids": cont,
        }
        for pid, head, cont in (("p1", heads[0], odd), ("p2", heads[1], plain))
    ] + [
        {
            "prompt_id": "p3",
            "sample": 0,
            "prompt": "x",
            "continuation": "",
            "prompt_token_ids": [87],
            "continuation_token_ids": [],
        }
    ]


def test_the_teacher_scores_the_token_ids_as_drawn(tiny_gpt2_dir: Path) -> None:
    model, tok = load_model(tiny_gpt2_dir)
    rows = _id_rows(tok)
    assert rows[0]["continuation"] == " hello world"
    # re-tokenised, " hello world" is two tokens, not the three that were drawn
    assert len(tok(rows[0]["continuation"], add_special_tokens=False)["input_ids"]) == 2
    per_row, source = rows_nll(model, tok, rows, batch_size=2)
    assert source == "token_ids"
    by_hand = float64_model(tiny_gpt2_dir)
    for row, (nll, count) in zip(rows[:2], per_row, strict=False):
        head, cont = row["prompt_token_ids"], row["continuation_token_ids"]
        assert count == len(cont)
        hand = -token_log_probs(by_hand, head + cont, start=len(head)).sum()
        assert nll == pytest.approx(hand, rel=1e-5)
    assert per_row[2] == (0.0, 0)  # an empty continuation is not scored
    text_nll, text_count = continuation_nll(
        model, tok, [(rows[0]["prompt"], rows[0]["continuation"])]
    )
    assert text_count == 2 and text_nll != pytest.approx(per_row[0][0], rel=1e-3)


def test_ids_another_tokenizer_wrote_fall_back_to_the_text(
    tiny_gpt2_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, tok = load_model(tiny_gpt2_dir)
    rows = _id_rows(tok)
    expected = [continuation_nll(model, tok, [(r["prompt"], r["continuation"])]) for r in rows]
    foreign = [dict(rows[0], continuation_token_ids=[60000, 5]), *rows[1:]]  # beyond 50,257
    shuffled = [dict(rows[0], continuation_token_ids=[995, 932]), *rows[1:]]  # other text
    older = [{k: v for k, v in r.items() if not k.endswith("_token_ids")} for r in rows]
    for bad, reason in (
        (foreign, "token id 60000 is outside the teacher's vocabulary of 50257"),
        (shuffled, "decodes the row's token ids to other text"),
        (older, "no prompt_token_ids and continuation_token_ids"),
    ):
        caplog.clear()
        per_row, source = rows_nll(model, tok, bad, batch_size=2, where="gen.jsonl")
        assert source == "text"
        assert "gen.jsonl: row 1" in caplog.text and reason in caplog.text
        for (nll, count), (want, n) in zip(per_row, expected, strict=True):
            assert count == n and nll == pytest.approx(want, rel=1e-6)
