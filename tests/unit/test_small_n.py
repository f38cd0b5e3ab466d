"""Intervals and p-values that hold with few prompts or items (issue 16)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compfair.metrics import (
    MIN_UNITS,
    Bootstrap,
    _corrected_disparity,
    _resample_units,
    corrected_disparity_test,
    paired_difference_test,
    paired_swap_test,
)
from compfair.simulation import KINDS, check_methods

REPETITIONS = 300
#: Two Monte Carlo standard errors of a share near 0.05 (p-values) and 0.95 (coverage).
SLACK = 2 * math.sqrt(0.05 * 0.95 / REPETITIONS)


@pytest.mark.parametrize("kind", KINDS)
def test_size_and_coverage_at_few_units(kind: str) -> None:
    """Under the null, p < 0.05 at most 6 % of the time at 2 to 30 units (a percentile
    bootstrap: 47 % at 2 units); reported intervals cover >= 93 %; none below min_units."""
    boot = Bootstrap(n_resamples=500)
    assert boot.min_units == MIN_UNITS == 10
    for n in (2, 3, 5, 10, 30):
        check = check_methods(kind, n, REPETITIONS, boot, seed=1)
        assert check.rejections <= 0.06 + SLACK, (kind, n, check)
        if n < MIN_UNITS:
            assert check.reported == 0.0 and math.isnan(check.marginal_coverage)
            continue
        assert check.reported >= 0.95, (kind, n, check)
        assert check.paired_coverage >= 0.93 - SLACK, (kind, n, check)
        assert check.marginal_coverage >= 0.93 - SLACK, (kind, n, check)


def test_exact_p_values_by_hand() -> None:
    """2 of 2 concordant pairs: p = 0.5 (the sign test), never 0; 5 of 5: 2/32."""
    a, b = np.array([0.9, 0.8]), np.array([0.1, 0.2])
    assert paired_difference_test(a, b, n_resamples=100)[3] == pytest.approx(0.5)
    a5, b5 = np.array([3.0, 1.0, 2.0, 5.0, 4.0]), np.zeros(5)
    assert paired_difference_test(a5, b5, n_resamples=100)[3] == pytest.approx(2 / 32)
    d = np.array([1.0, -1.0, 2.0, -3.0, 1.0])  # mean 0: every flip is at least as extreme
    assert paired_difference_test(d, np.zeros(5), n_resamples=100)[3] == pytest.approx(1.0)
    d = np.array([2.0, 2.0, -1.0])  # mean 1: count the sign patterns with |mean| >= 1
    flips = [(s1, s2, s3) for s1 in (1, -1) for s2 in (1, -1) for s3 in (1, -1)]
    by_hand = sum(abs((2 * s1 + 2 * s2 - s3) / 3) >= 1 - 1e-12 for s1, s2, s3 in flips) / 8
    assert paired_difference_test(d, np.zeros(3), n_resamples=100)[3] == pytest.approx(by_hand)


def test_no_p_value_is_zero_and_a_constant_shift_has_no_interval() -> None:
    """Every unit moving the same way: the Monte Carlo p is 1 / (draws + 1), not 0, and the
    'interval' (d, d) of every resample is not reported."""
    a = np.linspace(0.2, 0.8, 30)
    diff, low, high, p = paired_difference_test(a, a - 0.3, n_resamples=999)
    assert diff == pytest.approx(0.3)
    assert p == pytest.approx(1 / 1000)
    assert math.isnan(low) and math.isnan(high)
    # the same with a non-mean statistic goes through the general swap test
    _, _, _, p_std = paired_difference_test(a * 2, a, np.std, n_resamples=999)
    assert 1 / 1000 <= p_std < 0.05


def test_swap_test_equals_sign_flip_for_means() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.2, 1, (2, 14)), rng.normal(0, 1, (2, 14))

    def mean_diff(x: list[np.ndarray], y: list[np.ndarray]) -> np.ndarray:
        return (x[0].mean(axis=-1) - y[0].mean(axis=-1)).mean(axis=0)

    swap = paired_swap_test([a], [b], mean_diff, n_draws=2**14)  # exact: all 16,384 patterns
    assert swap == pytest.approx(paired_difference_test(a, b, n_resamples=2**14)[3])


def test_bca_is_not_corrected_twice() -> None:
    """Under BCa the corrected disparity's interval is scipy's BCa interval, unshifted."""
    rng = np.random.default_rng(4)
    groups = [rng.normal(0.0, 0.3, 12) for _ in range(6)]
    value, low, high, _ = corrected_disparity_test(groups, n_resamples=400, seed=7, method="BCa")
    arrays = [g[np.newaxis, :] for g in groups]
    expected = _resample_units(
        lambda *idx: _corrected_disparity(arrays, idx),
        [12] * 6,
        2 * 72,
        400,
        0.95,
        7,
        "BCa",
    )
    assert (low, high) == pytest.approx(expected[:2])
    # the percentile interval is shifted by the resamples' bias instead
    _, p_low, _, _ = corrected_disparity_test(groups, n_resamples=400, seed=7, method="percentile")
    raw = _resample_units(
        lambda *idx: _corrected_disparity(arrays, idx), [12] * 6, 144, 400, 0.95, 7, "percentile"
    )
    assert p_low == pytest.approx(raw[0] - (raw[2].mean() - value))


def test_bca_covers_a_planted_disparity() -> None:
    """BCa was corrected twice before (66.5 % coverage with a planted difference); now ~90 %."""
    rng = np.random.default_rng(5)
    true = np.linspace(-0.3, 0.3, 8)
    covered = 0
    for i in range(40):
        groups = [rng.normal(m, 0.3, 12) for m in true]
        _, low, high, _ = corrected_disparity_test(groups, n_resamples=300, seed=i, method="BCa")
        covered += low <= np.var(true, ddof=1) <= high
    assert covered / 40 >= 0.8


def test_disparity_below_min_units_is_empty() -> None:
    rng = np.random.default_rng(6)
    groups = [rng.normal(0.0, 0.3, 5) for _ in range(4)]
    value, low, high, p = corrected_disparity_test(groups, groups, min_units=10)
    assert value == 0.0 and all(math.isnan(x) for x in (low, high, p))
