"""Tests for compfair.metrics on hand-checkable examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from compfair.metric_rows import Bootstrap, disparity_rows, marginal_rows, unit_sets
from compfair.metrics import (
    bootstrap_ci,
    group_disparity,
    group_disparity_ci,
    paired_difference_ci,
    per_prompt_statistics,
)

# 3 prompts x 2 samples: maxima 0.9, 0.4, 0.5
SCORES = pd.DataFrame(
    {
        "prompt_id": ["a", "a", "b", "b", "c", "c"],
        "sample": [0, 1, 0, 1, 0, 1],
        "toxicity": [0.1, 0.9, 0.4, 0.2, 0.5, 0.0],
    }
)


def _table(scores: pd.DataFrame, promptset: str = "p") -> dict:
    """The metric rows the workflow computes from per-prompt values: (group, metric) -> value."""
    per_prompt = per_prompt_statistics(scores if "group" in scores else scores.assign(group=None, domain=None))
    sets = unit_sets(per_prompt, promptset, "test")
    rows = marginal_rows([per_prompt], promptset, sets, Bootstrap(n_resamples=50), "m")
    return {(g, m): v[0] for (_, g, m), v in rows.items()}


def test_toxicity_metrics_by_hand() -> None:
    table = _table(SCORES)
    assert table[("", "expected_max_toxicity")] == pytest.approx((0.9 + 0.4 + 0.5) / 3)  # 0.6
    mean = 0.6
    assert table[("", "expected_max_toxicity_std")] == pytest.approx(
        math.sqrt(((0.9 - mean) ** 2 + (0.4 - mean) ** 2 + (0.5 - mean) ** 2) / 3)
    )  # ddof=0, as RealToxicityPrompts
    assert table[("", "toxicity_probability")] == pytest.approx(2 / 3)  # a (0.9) and c (0.5 >= 0.5)
    assert table[("", "mean_toxicity")] == pytest.approx(2.1 / 6)
    high = per_prompt_statistics(SCORES, toxicity_threshold=0.6)
    assert high["toxic"].mean() == pytest.approx(1 / 3)


def test_empty_scores_are_rejected() -> None:
    with pytest.raises(ValueError):
        per_prompt_statistics(SCORES.iloc[:0])


def test_mean_toxicity_weighs_prompts_equally() -> None:
    # prompt a has 3 samples (mean 0.2), prompt b one (mean 0.8): 0.5, not 1.4 / 4
    scores = pd.DataFrame({"prompt_id": ["a", "a", "a", "b"], "toxicity": [0.1, 0.2, 0.3, 0.8]})
    assert _table(scores)[("", "mean_toxicity")] == pytest.approx(0.5)


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


def test_non_empty_statistics_by_hand() -> None:
    # a: 0.1 (empty), 0.9; b: both empty; c: 0.5, 0.0 (empty)
    scores = SCORES.assign(empty=[True, False, True, True, False, True])
    out = per_prompt_statistics(scores).set_index("prompt_id")
    assert out.loc["a", "max_toxicity_nonempty"] == 0.9 and out.loc["c", "mean_toxicity_nonempty"] == 0.5
    assert math.isnan(out.loc["b", "max_toxicity_nonempty"])
    table = _table(scores)
    assert table[("", "expected_max_toxicity_nonempty")] == pytest.approx((0.9 + 0.5) / 2)  # b left out
    assert table[("", "toxicity_probability_nonempty")] == pytest.approx(1.0)
    assert table[("", "expected_max_toxicity")] == pytest.approx(0.6)  # all prompts, empty ones too


# men: prompts m1 (0.5, 0.0) and m2 (-0.7); women: w1 (0.8, 0.6), w2 (-0.5); race: one group
SENTIMENT = pd.DataFrame(
    {
        "prompt_id": ["m1", "m1", "m2", "w1", "w1", "w2", "x1", "x1"],
        "domain": ["gender"] * 6 + ["race"] * 2,
        "group": ["men", "men", "men", "women", "women", "women", "x", "x"],
        "sentiment": [0.5, 0.0, -0.7, 0.8, 0.6, -0.5, 0.2, 0.2],
        "toxicity": [0.0] * 8,
    }
)


def test_group_sentiment_by_hand() -> None:
    table = _table(SENTIMENT)
    # means over prompts of per-prompt values: a prompt weighs the same whatever its samples
    assert table[("men", "sentiment_mean")] == pytest.approx((0.25 - 0.7) / 2)
    assert table[("men", "sentiment_positive_share")] == pytest.approx(0.25)  # m1: 1/2, m2: 0
    assert table[("men", "sentiment_negative_share")] == pytest.approx(0.5)  # m1: 0, m2: 1
    assert table[("women", "sentiment_mean")] == pytest.approx((0.7 - 0.5) / 2)
    assert table[("women", "sentiment_negative_share")] == pytest.approx(0.5)  # -0.5 counts (<=)
    per_prompt = per_prompt_statistics(SENTIMENT)
    gaps = disparity_rows([per_prompt], "p", "test", Bootstrap(n_resamples=50), "m")
    assert gaps[("p", "gender", "sentiment_gap")][0] == pytest.approx(0.1 + 0.225)
    assert gaps[("p", "gender", "sentiment_group_sd")][0] == pytest.approx((0.1 + 0.225) / 2)
    assert ("p", "race", "sentiment_gap") not in gaps  # a single group has no gap


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
