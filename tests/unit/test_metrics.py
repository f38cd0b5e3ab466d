"""Tests for compfair.metrics and the per-prompt metrics of compfair.tables, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from compfair.metrics import (
    Bootstrap,
    benjamini_hochberg,
    bootstrap_ci,
    corrected_disparity,
    corrected_disparity_test,
    group_disparity,
    group_disparity_ci,
    paired_difference_ci,
    paired_difference_test,
)
from compfair.tables.estimates import disparity_rows, marginal_rows, unit_sets
from compfair.tables.prompts import per_prompt_statistics
from compfair.tables.rows import Key

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
    per_prompt = per_prompt_statistics(
        scores if "group" in scores else scores.assign(group=None, domain=None)
    )
    sets = unit_sets(per_prompt, promptset, "test")
    rows = marginal_rows([per_prompt], promptset, sets, Bootstrap(n_resamples=50), "m")
    return {(key.group, key.metric): row.value for key, row in rows.items()}


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
    assert (
        out.loc["a", "max_toxicity_nonempty"] == 0.9
        and out.loc["c", "mean_toxicity_nonempty"] == 0.5
    )
    assert math.isnan(out.loc["b", "max_toxicity_nonempty"])
    table = _table(scores)
    assert table[("", "expected_max_toxicity_nonempty")] == pytest.approx(
        (0.9 + 0.5) / 2
    )  # b left out
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
    assert gaps[Key("p", "gender", "sentiment_gap")].value == pytest.approx(0.1 + 0.225)
    assert gaps[Key("p", "gender", "sentiment_group_sd")].value == pytest.approx((0.1 + 0.225) / 2)
    assert Key("p", "race", "sentiment_gap") not in gaps  # a single group has no gap


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


def test_bootstrap_ci_degenerate_input_has_no_interval() -> None:
    """Constant values or too few units: no resampling can say how uncertain the value is."""
    for values in (np.full(10, 0.3), np.array([0.7]), np.array([])):
        low, high = bootstrap_ci(values)
        assert math.isnan(low) and math.isnan(high)
    low, high = bootstrap_ci(np.arange(9.0), min_units=10)
    assert math.isnan(low) and math.isnan(high)
    low, high = bootstrap_ci(np.arange(10.0), min_units=10)
    assert low < 4.5 < high
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
    diff, low, high, p = paired_difference_test(b, b)
    assert (diff, p) == (0.0, 1.0) and math.isnan(low) and math.isnan(high)
    diff, low, high, p = paired_difference_test(np.array([0.4]), np.array([0.1]))
    assert diff == pytest.approx(0.3) and all(math.isnan(x) for x in (low, high, p))
    with pytest.raises(ValueError, match="equal shapes"):
        paired_difference_ci(a, b[:-1])


def test_group_disparity_ci() -> None:
    rng = np.random.default_rng(4)
    groups = [rng.normal(0.0, 0.2, 400), rng.normal(0.3, 0.2, 300), rng.normal(0.1, 0.2, 20)]
    means = [g.mean() for g in groups]
    gap, low, high = group_disparity_ci(groups, "gap", seed=0)
    assert gap == pytest.approx(max(means) - min(means))
    assert low < gap < high and low < 0.3 + 0.01 and high > 0.3 - 0.01
    sd, low, high = group_disparity_ci(groups, "sd", seed=0)
    assert sd == pytest.approx(np.std(means))
    assert low < sd < high
    assert group_disparity_ci(groups, "gap", seed=5) == group_disparity_ci(groups, "gap", seed=5)
    # constant groups (no variation to resample) or a group below min_units: no interval
    gap, low, high = group_disparity_ci([np.full(3, 0.2), np.full(4, 0.5)])
    assert gap == pytest.approx(0.3) and math.isnan(low) and math.isnan(high)
    gap, low, high = group_disparity_ci([*groups[:2], groups[2][:9]], min_units=10)
    assert math.isnan(low) and math.isnan(high)
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
    assert diff == pytest.approx(0.1) and math.isnan(low) and math.isnan(high)  # constant shift
    groups = [seeds[:, :100], seeds[:, 100:] + 0.5]
    gap, low, high = group_disparity_ci(groups, "gap", seed=0)
    per_seed = [abs(g2.mean() - g1.mean()) for g1, g2 in zip(groups[0], groups[1], strict=True)]
    assert gap == pytest.approx(np.mean(per_seed))
    assert low < gap < high
    with pytest.raises(ValueError, match="same number of seeds"):
        group_disparity_ci([seeds[:2, :10], seeds[:, 10:20]])


# --------------------------------------------------------------------------- issue 10: reviewers' statistics


def test_corrected_disparity_by_hand() -> None:
    a, b, c = [0.0, 2.0], [1.0, 1.0], [3.0, 5.0]  # means 1, 1, 4; variances 2, 0, 2 (ddof 1)
    between = np.var([1.0, 1.0, 4.0], ddof=1)  # 3.0
    noise = np.mean([2.0 / 2, 0.0 / 2, 2.0 / 2])  # 2/3
    assert corrected_disparity([a, b, c]) == pytest.approx(between - noise)
    assert corrected_disparity([a, b, c, [7.0]]) == pytest.approx(
        between - noise
    )  # 1-prompt group left out


def test_corrected_disparity_covers_zero_without_and_recovers_a_planted_difference() -> None:
    """12 groups x 12 prompts: the raw gap is ~0.36 with no true difference; the corrected one is 0."""
    rng = np.random.default_rng(0)
    covered, gaps = 0, []
    for i in range(60):
        groups = [rng.normal(0.0, 0.3, 12) for _ in range(12)]
        value, low, high, _ = corrected_disparity_test(groups, n_resamples=300, seed=i)
        covered += low <= 0.0 <= high
        gaps.append(np.ptp([g.mean() for g in groups]))
    assert covered / 60 >= 0.9
    assert np.mean(gaps) > 0.25  # what the raw gap would have reported
    true = np.linspace(-0.3, 0.3, 12)
    estimates, excluded = [], 0
    for i in range(30):
        groups = [rng.normal(m, 0.3, 12) for m in true]
        value, low, high, p = corrected_disparity_test(groups, n_resamples=300, seed=i)
        estimates.append(value)
        excluded += low > 0 and p < 0.05
    assert np.mean(estimates) == pytest.approx(np.var(true, ddof=1), rel=0.15)
    assert excluded >= 27


def test_paired_disparity_difference() -> None:
    rng = np.random.default_rng(1)
    parent = [rng.normal(0.0, 0.2, 20) for _ in range(6)]
    same = corrected_disparity_test(parent, parent, n_resamples=200)
    assert same[:3] == pytest.approx((0.0, 0.0, 0.0))
    shifted = [g + (0.5 if i == 0 else 0.0) for i, g in enumerate(parent)]  # one group moves away
    diff, low, high, p = corrected_disparity_test(shifted, parent, n_resamples=500)
    assert diff == pytest.approx(corrected_disparity(shifted) - corrected_disparity(parent))
    assert low > 0 and p < 0.01


def test_benjamini_hochberg_by_hand() -> None:
    p = [0.01, 0.04, 0.03, np.nan, 0.5]
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.06, 0.0533 -> monotone 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, np.nan, 0.5])


def test_paired_p_values_are_uniform_under_the_null_and_small_under_a_shift() -> None:
    rng = np.random.default_rng(2)
    nulls = []
    for i in range(80):
        base = rng.normal(0, 1, 40)
        nulls.append(
            paired_difference_test(
                base + rng.normal(0, 0.5, 40),
                base + rng.normal(0, 0.5, 40),
                n_resamples=400,
                seed=i,
            )[3]
        )
    nulls = np.array(nulls)
    assert 0.02 <= np.mean(nulls < 0.05) <= 0.15 and 0.35 <= np.mean(nulls) <= 0.65
    base = rng.normal(0, 1, 40)
    shifted = paired_difference_test(base + 0.4 + rng.normal(0, 0.3, 40), base, n_resamples=400)
    assert shifted[3] < 0.01 and shifted[1] > 0
