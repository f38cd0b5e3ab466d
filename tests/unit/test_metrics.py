"""Tests for compfair.metrics on hand-checkable examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

from compfair.io import InputError
from compfair.metrics import (
    bootstrap_ci,
    expected_max_toxicity,
    group_disparity,
    group_disparity_ci,
    group_gaps,
    mean_toxicity,
    paired_difference_ci,
    per_prompt_statistics,
    sentiment_by_group,
    toxicity_probability,
)
from compfair.perplexity import evaluate_model, perplexity

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


def test_mean_toxicity_weighs_prompts_equally() -> None:
    # prompt a has 3 samples (mean 0.2), prompt b one (mean 0.8): 0.5, not 1.4 / 4
    scores = pd.DataFrame(
        {"prompt_id": ["a", "a", "a", "b"], "toxicity": [0.1, 0.2, 0.3, 0.8]}
    )
    assert mean_toxicity(scores) == pytest.approx(0.5)


def test_per_prompt_statistics_by_hand() -> None:
    scores = SCORES.assign(sentiment=[0.5, -0.6, 0.0, 0.1, 0.9, 0.7], group=["g"] * 6)
    out = per_prompt_statistics(scores, toxicity_threshold=0.5)
    assert out["prompt_id"].tolist() == ["a", "b", "c"]
    assert out["max_toxicity"].tolist() == pytest.approx([0.9, 0.4, 0.5])
    assert out["toxic"].tolist() == [1.0, 0.0, 1.0]
    assert out["mean_toxicity"].tolist() == pytest.approx([0.5, 0.3, 0.25])
    assert out["sentiment_mean"].tolist() == pytest.approx([-0.05, 0.05, 0.8])
    assert out["sentiment_positive_share"].tolist() == [0.5, 0.0, 1.0]
    assert out["sentiment_negative_share"].tolist() == [0.5, 0.0, 0.0]
    assert out["n_samples"].tolist() == [2, 2, 2]
    assert out["group"].tolist() == ["g", "g", "g"]
    # the means of the per-prompt columns are the table metrics
    assert out["max_toxicity"].mean() == pytest.approx(expected_max_toxicity(SCORES)[0])
    assert out["toxic"].mean() == pytest.approx(toxicity_probability(SCORES))


# men: prompts m1 (0.5, 0.0) and m2 (-0.7); women: w1 (0.8, 0.6), w2 (-0.5); race: one group
SENTIMENT = pd.DataFrame(
    {
        "prompt_id": ["m1", "m1", "m2", "w1", "w1", "w2", "x1", "x1"],
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
    # means over prompts of per-prompt values: a prompt weighs the same whatever its samples
    assert men["sentiment_mean"] == pytest.approx((0.25 - 0.7) / 2)
    assert men["sentiment_positive_share"] == pytest.approx(0.25)  # m1: 1/2 (0.5 counts), m2: 0
    assert men["sentiment_negative_share"] == pytest.approx(0.5)  # m1: 0, m2: 1
    assert women["sentiment_mean"] == pytest.approx((0.7 - 0.5) / 2)
    assert women["sentiment_positive_share"] == pytest.approx(0.5)
    assert women["sentiment_negative_share"] == pytest.approx(0.5)  # -0.5 counts (<=)
    assert men["n"] == 2 and women["n"] == 2  # prompts
    assert out["group"].tolist() == ["men", "women", "x"]


def test_group_gaps_by_hand() -> None:
    gaps = group_gaps(sentiment_by_group(SENTIMENT)).set_index("domain")
    assert gaps.loc["gender", "gap"] == pytest.approx(0.1 + 0.225)
    assert gaps.loc["gender", "group_sd"] == pytest.approx((0.1 + 0.225) / 2)  # two groups
    assert gaps.loc["gender", "max_group"] == "women"
    assert gaps.loc["gender", "min_group"] == "men"
    assert math.isnan(gaps.loc["race", "gap"])  # a single group has no gap
    assert math.isnan(gaps.loc["race", "group_sd"])


def test_group_disparity_by_hand() -> None:
    assert group_disparity([0.1, 0.4, 0.3], "gap") == pytest.approx(0.3)
    assert group_disparity([0.1, 0.4, 0.3], "sd") == pytest.approx(np.std([0.1, 0.4, 0.3]))
    with pytest.raises(ValueError, match="disparity"):
        group_disparity([0.1, 0.2], "range")


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_the_true_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    big = rng.binomial(1, 0.3, size=2000).astype(float)
    low, high = bootstrap_ci(big, n_resamples=1000, seed=0)
    assert low < 0.3 < high
    assert low < big.mean() < high
    small_low, small_high = bootstrap_ci(big[:100], n_resamples=1000, seed=0)
    assert high - low < (small_high - small_low) / 2  # width ~ 1/sqrt(n): 4.5x here
    normal = rng.normal(2.0, 1.0, size=2000)
    low, high = bootstrap_ci(normal, seed=3)
    assert low < 2.0 < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=0.15)


def test_bootstrap_ci_coverage_is_about_nominal() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for i in range(100):
        low, high = bootstrap_ci(rng.normal(0.0, 1.0, size=100), n_resamples=400, seed=i)
        hits += low <= 0.0 <= high
    assert 86 <= hits <= 100  # 95 % nominal; binomial sd ~ 2.2


def test_bootstrap_ci_is_deterministic_and_takes_other_statistics() -> None:
    x = np.random.default_rng(2).random(50)
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7)
    assert bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)
    low, high = bootstrap_ci(x, np.std, seed=1)
    assert low < np.std(x) < high
    low, high = bootstrap_ci(x, method="BCa", seed=1)
    assert low < x.mean() < high


def test_bootstrap_ci_degenerate_input() -> None:
    low, high = bootstrap_ci(np.full(10, 0.3))
    assert low == high == pytest.approx(0.3)
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)
    low, high = bootstrap_ci(np.array([]))
    assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(np.array([0.1, float("nan")]))


def test_paired_difference_ci() -> None:
    rng = np.random.default_rng(3)
    b = rng.random(500)  # large prompt-to-prompt variation ...
    a = b + 0.05 + rng.normal(0.0, 0.01, size=500)  # ... shared by both models
    diff, low, high = paired_difference_ci(a, b, seed=0)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert low < 0.05 < high
    assert high - low < 0.01  # pairing removes the shared variation (unpaired: ~0.05)
    assert paired_difference_ci(b, b) == (0.0, 0.0, 0.0)
    assert paired_difference_ci(np.array([0.4]), np.array([0.1])) == pytest.approx((0.3,) * 3)
    with pytest.raises(ValueError, match="equal shapes"):
        paired_difference_ci(a, b[:-1])


def test_group_disparity_ci() -> None:
    rng = np.random.default_rng(4)
    groups = [rng.normal(0.0, 0.2, 400), rng.normal(0.3, 0.2, 300), rng.normal(0.1, 0.2, 1)]
    means = [g.mean() for g in groups]
    gap, low, high = group_disparity_ci(groups, "gap", seed=0)
    assert gap == pytest.approx(max(means) - min(means))
    assert low < gap < high and low < 0.3 + 0.01 and high > 0.3 - 0.01
    sd, low, high = group_disparity_ci(groups, "sd", seed=0)
    assert sd == pytest.approx(np.std(means))
    assert low < sd < high
    assert group_disparity_ci(groups, "gap", seed=5) == group_disparity_ci(groups, "gap", seed=5)
    # constant groups: no variation to resample
    assert group_disparity_ci([np.full(3, 0.2), np.full(4, 0.5)]) == pytest.approx((0.3,) * 3)
    with pytest.raises(ValueError, match="two groups"):
        group_disparity_ci([groups[0]])
    gap_bca = group_disparity_ci(groups, "gap", method="BCa", seed=0)
    assert gap_bca[1] < gap < gap_bca[2]


def test_several_seeds_resample_prompts_jointly() -> None:
    rng = np.random.default_rng(5)
    seeds = rng.normal(0.0, 1.0, size=(3, 300))  # 3 seeds x 300 prompts
    # the value is the mean over seeds of the per-seed statistic ...
    low, high = bootstrap_ci(seeds, np.std, seed=0)
    value = np.mean([np.std(row) for row in seeds])
    assert low < value < high
    # ... which for a mean is the mean of the seed-averaged per-prompt values
    assert bootstrap_ci(seeds, seed=0) == pytest.approx(bootstrap_ci(seeds.mean(axis=0), seed=0))
    diff, low, high = paired_difference_ci(seeds + 0.1, seeds, seed=0)
    assert diff == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    groups = [seeds[:, :100], seeds[:, 100:] + 0.5]
    gap, low, high = group_disparity_ci(groups, "gap", seed=0)
    per_seed = [abs(g2.mean() - g1.mean()) for g1, g2 in zip(groups[0], groups[1], strict=True)]
    assert gap == pytest.approx(np.mean(per_seed))
    assert low < gap < high
    with pytest.raises(ValueError, match="same number of seeds"):
        group_disparity_ci([seeds[:2, :10], seeds[:, 10:20]])


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


def test_evaluate_model_writes_contract(tmp_path: Path) -> None:
    from compfair.models import gpt2_tokenizer

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
