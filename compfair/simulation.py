"""Simulated per-unit values for checking the tables' intervals and tests.

The null the paired tests are about: a model and its parent whose values of
each unit (prompt, item) come from the same distribution around a shared
unit effect, so every difference is noise. :func:`paired_null` draws such
pairs with normal, skewed (a toxicity-like Beta(0.5, 3)) or 0/1 values, and
:func:`marginal_sample` one model's values with a known mean.
:func:`check_methods` runs the package's own functions on them and returns
the share of p-values under 0.05 and the coverage of the intervals that are
reported (those with at least ``min_units`` units); ``bench/coverage.py``
prints the table that ``bootstrap.min_units`` was chosen from, and
``tests/unit/test_small_n.py`` asserts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compfair.metrics import Bootstrap, bootstrap_ci, paired_difference_test

#: Kinds of per-unit values.
KINDS = ("normal", "skewed", "binary")
#: Mean of each kind (the marginal intervals' target).
MEANS = {"normal": 0.0, "skewed": 0.5 / 3.5, "binary": 0.3}


def draw(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of one kind: N(0, 1), Beta(0.5, 3) (skewness ~1.7) or Bernoulli(0.3)."""
    if kind == "normal":
        return rng.normal(0.0, 1.0, n)
    if kind == "skewed":
        return rng.beta(0.5, 3.0, n)
    if kind == "binary":
        return (rng.random(n) < MEANS["binary"]).astype(float)
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def paired_null(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A model's and its parent's values of ``n`` units under the null (exchangeable pairs)."""
    if kind == "binary":  # a unit effect on the probability, both models draw from it
        p = rng.beta(2.0, 4.0, n)
        return (rng.random(n) < p).astype(float), (rng.random(n) < p).astype(float)
    unit = rng.normal(0.0, 1.0, n)
    return unit + draw(kind, n, rng), unit + draw(kind, n, rng)


@dataclass(frozen=True)
class Check:
    """One cell of the table: kind, units, and what the package's functions did."""

    kind: str
    n_units: int
    rejections: float  # share of paired p-values < 0.05 under the null
    paired_coverage: float  # share of reported paired intervals that hold 0 (NaN: none)
    marginal_coverage: float  # share of reported marginal intervals that hold the mean
    reported: float  # share of paired rows with an interval


def check_methods(kind: str, n_units: int, repetitions: int, boot: Bootstrap, seed: int) -> Check:
    """Run :func:`paired_difference_test` and :func:`bootstrap_ci` on simulated data."""
    rng = np.random.default_rng([seed, n_units, KINDS.index(kind)])
    rejected, paired, marginal, reported = 0, [], [], 0
    for rep in range(repetitions):
        a, b = paired_null(kind, n_units, rng)
        kwargs = boot.kwargs(kind, str(n_units), str(rep))
        _, low, high, p = paired_difference_test(a, b, min_units=1, **_no_min(kwargs))
        rejected += p < 0.05
        _, low, high, _ = paired_difference_test(a, b, **kwargs)
        if np.isfinite(low):
            reported += 1
            paired.append(low <= 0.0 <= high)
        low, high = bootstrap_ci(draw(kind, n_units, rng), **kwargs)
        if np.isfinite(low):
            marginal.append(low <= MEANS[kind] <= high)
    return Check(
        kind,
        n_units,
        rejected / repetitions,
        float(np.mean(paired)) if paired else float("nan"),
        float(np.mean(marginal)) if marginal else float("nan"),
        reported / repetitions,
    )


def _no_min(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k != "min_units"}


__all__ = ["KINDS", "MEANS", "Check", "check_methods", "draw", "paired_null"]
