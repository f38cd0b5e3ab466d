"""The statistics behind every interval and p-value: bootstrap, randomization tests.

Model perplexities live in :mod:`compfair.perplexity`, which needs torch; the
per-prompt values the tables resample are made in :mod:`compfair.tables.prompts`.

Units (prompts, items, held-out windows) come as a 1-D array or, with several
seeds, as (n_seeds, n_units). Intervals are bootstraps over units
(:func:`bootstrap_ci`, :func:`paired_difference_ci`, :func:`group_disparity_ci`)
with the settings of :class:`Bootstrap`, deterministic given the seed; p-values
come from randomization tests (:func:`paired_swap_test`,
:func:`group_permutation_test`); :func:`benjamini_hochberg` adjusts them. The
tables, the intrinsic benchmarks, the quality guards and the simulations all
go through these functions.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Statistic = Callable[..., Any]


def group_disparity(group_values: Sequence[float], kind: str = "gap") -> float:
    """Disparity of group-level values: ``"gap"`` (max - min) or ``"sd"`` (std, ddof=0)."""
    values = np.asarray(group_values, dtype=float)
    if kind == "gap":
        return float(values.max() - values.min())
    if kind == "sd":
        return float(values.std())
    raise ValueError(f"unknown disparity {kind!r}; expected 'gap' or 'sd'")


# --------------------------------------------------------------------------- settings


#: Interval methods: scipy's ``percentile`` and ``BCa``, and ``expanded``, the
#: percentile interval at a level widened for small n (Hesterberg 2015, "What
#: teachers should know about the bootstrap", section 3.6): its quantiles are
#: those of a normal at ``sqrt(n / (n - 1)) * t_{n-1}``, which undoes the
#: bootstrap's narrowness (it resamples with the plug-in variance) and uses the
#: t quantile. bench/coverage.py measures the three.
METHODS = ("expanded", "percentile", "BCa")
#: Fewest units (prompts, items) a row needs for an interval and a p-value
#: (``bootstrap.min_units``); bench/coverage.py is the simulation it comes from.
MIN_UNITS = 10


@dataclass(frozen=True)
class Bootstrap:
    """Settings of every interval and test (the ``bootstrap`` config); seeds derive from the row."""

    n_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    method: str = "expanded"
    min_units: int = MIN_UNITS

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Bootstrap:
        return cls(**dict(config or {}))

    def kwargs(self, *key: str) -> dict[str, Any]:
        """Arguments of one interval call; its seed depends on the row it computes."""
        digest = hashlib.sha256("\x1f".join([str(self.seed), *key]).encode()).hexdigest()
        return {
            "n_resamples": int(self.n_resamples),
            "confidence": float(self.confidence),
            "seed": int(digest[:15], 16),
            "method": self.method,
            "min_units": int(self.min_units),
        }


def note_of(values: np.ndarray, boot: Bootstrap) -> str:
    """Why the interval of a row over ``values`` (units on the last axis) is empty, or "".

    For a paired row pass the differences, model minus parent.
    """
    values = np.asarray(values, dtype=float)
    return no_interval_reason(values.shape[-1], is_constant(values), max(boot.min_units, 2))


def no_interval_reason(n_units: int, constant: bool, min_units: int) -> str:
    """Why a row has no interval (and no p-value), or ``""`` when it has one.

    ``n_units`` is the row's number of units (the smallest group's, for a
    disparity); ``constant`` says every unit has the same value (for a paired
    row: the same difference), when no resampling can say how uncertain the
    value is.
    """
    if n_units < min_units:
        return f"fewer than {min_units} units (bootstrap.min_units)"
    if constant:
        return "every unit has the same value: no resampling interval"
    return ""


# --------------------------------------------------------------------------- bootstrap
#
# Every interval resamples prompts. Per-prompt values come as a 1-D array
# (n_prompts,) or, with several seeds, as a 2-D array (n_seeds, n_prompts)
# whose columns are the same prompts: the statistic is computed per seed and
# averaged over seeds, and a resample draws prompts (columns), keeping all
# seeds' values of a drawn prompt. For means over prompts this is the same as
# resampling the seed-averaged per-prompt values; for the others (a std, a
# gap) it keeps the interval about the reported value, the mean over seeds.
#
# p-values do not come from the bootstrap (a percentile bootstrap rejects a
# true null 47 % of the time at 2 units): they come from randomization tests
# (:func:`paired_swap_test`, :func:`group_permutation_test`), exact by
# enumeration when the units are few, Monte Carlo otherwise, never below
# ``1 / (draws + 1)``.

#: Resampled values held in memory at once (per bootstrap batch): ~40 MB of float64.
_BATCH_VALUES = 5_000_000


def _batch(n_values: int, n_resamples: int) -> int:
    """Resamples per batch, so that 99k RTP prompts x 1000 resamples never sit in memory."""
    return max(1, min(n_resamples, _BATCH_VALUES // max(n_values, 1)))


def _as_units(values: Any, what: str = "per-unit values") -> np.ndarray:
    """``values`` as a float array (n_seeds, n_units); a 1-D input is one seed."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise ValueError(f"{what}: expected a 1-D or 2-D array, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{what} contain NaN")
    return array


def _seed_mean(statistic: Statistic, values: np.ndarray) -> float:
    """``statistic`` over units for each seed (row), averaged over seeds."""
    return float(np.mean([statistic(row) for row in values]))


def is_constant(values: np.ndarray) -> bool:
    """Every unit (last axis) holds the same values as the first, up to rounding (1e-12)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return True
    slack = 1e-12 * max(1.0, float(np.abs(values).max()))
    return bool(np.all(np.abs(values - values[..., :1]) <= slack))


def _scipy_level(method: str, confidence: float, n_units: int) -> tuple[str, float]:
    """scipy's method and confidence level for one of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; expected one of {METHODS}")
    if method != "expanded":
        return method, confidence
    # Imported here: the Snakefile imports this module to plan, and scipy.stats costs ~0.6 s.
    from scipy import stats

    n = max(n_units, 2)
    z = math.sqrt(n / (n - 1)) * stats.t.ppf(0.5 + confidence / 2, n - 1)
    return "percentile", float(1.0 - 2.0 * stats.norm.sf(z))


def _resample_units(
    statistic: Callable[..., np.ndarray],
    n_units: Sequence[int],
    n_values: int,
    n_resamples: int,
    confidence: float,
    seed: int,
    method: str,
) -> tuple[float, float, np.ndarray]:
    """Bootstrap over unit indices: ``statistic`` receives integer index arrays.

    ``statistic(*indices)`` gets one index array per sample, of shape
    (..., n) (resamples first), and returns one value per resample. Returns
    the interval and the bootstrap distribution (one value per resample).
    This is the one resampler of the package: every interval goes through it.
    ``expanded`` widens the level by the smallest sample's size.
    """

    def on_indices(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        if axis != -1:  # pragma: no cover - scipy always passes the last axis
            samples = tuple(np.moveaxis(s, axis, -1) for s in samples)
        return statistic(*(s.astype(np.intp) for s in samples))

    from scipy import stats

    scipy_method, level = _scipy_level(method, confidence, min(n_units))
    result = stats.bootstrap(
        tuple(np.arange(n) for n in n_units),
        on_indices,
        paired=False,
        vectorized=True,
        n_resamples=n_resamples,
        batch=_batch(n_values, n_resamples),
        confidence_level=level,
        method=scipy_method,
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return float(ci.low), float(ci.high), np.asarray(result.bootstrap_distribution, dtype=float)


# --------------------------------------------------------------------------- randomization tests


def _swap_masks(
    n_units: int, n_draws: int, values_per_draw: int, seed: int
) -> Iterator[np.ndarray]:
    """Batches of swap masks (draws, n_units): every pattern when 2^n <= ``n_draws``, else random.

    Random masks come in batches sized by ``values_per_draw`` (memory), from
    one seeded stream, so the masks do not depend on the batch size.
    """
    if _exact(n_units, n_draws):
        yield (np.arange(2**n_units)[:, np.newaxis] >> np.arange(n_units) & 1).astype(bool)
        return
    rng = np.random.default_rng(seed)
    step = _batch(values_per_draw, n_draws)
    for start in range(0, n_draws, step):
        yield rng.random((min(step, n_draws - start), n_units)) < 0.5


def _exact(n_units: int, n_draws: int) -> bool:
    """Whether a swap test enumerates every pattern instead of sampling ``n_draws``."""
    return n_units <= 20 and 2**n_units <= n_draws


def _p_from_draws(observed: float, drawn: np.ndarray, exact: bool, one_sided: bool) -> float:
    """Share of draws at least as extreme as ``observed`` (ties count), ``+1`` when sampled."""
    slack = 1e-12 * max(abs(observed), 1.0)
    if one_sided:
        extreme = np.count_nonzero(drawn >= observed - slack)
    else:
        extreme = np.count_nonzero(np.abs(drawn) >= abs(observed) - slack)
    if exact:
        return float(extreme / drawn.size)
    return float(min(1.0, (extreme + 1) / (drawn.size + 1)))


def paired_swap_test(
    a_parts: Sequence[np.ndarray],
    b_parts: Sequence[np.ndarray],
    difference: Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray],
    n_draws: int = 2000,
    seed: int = 0,
) -> float:
    """Two-sided p-value of "model and parent are exchangeable within every unit".

    ``a_parts[g]`` and ``b_parts[g]`` are (n_seeds, n_g) values of the same
    units (one part per group; a prompt set is one part). Each draw swaps
    the two models' values of a random set of units (all seeds of a unit
    together) and recomputes ``difference(a, b)``, which takes parts of
    shape (n_seeds, draws, n_g) and returns one value per draw. For a mean
    this is the sign-flip test of the per-unit differences. Under the null
    the test is exact: enumerated when ``2^n <= n_draws``, else ``n_draws``
    random swaps with p >= ``1 / (n_draws + 1)``. It needs no symmetry
    beyond the exchangeability of the pair, so it holds at 2 units (p >= 0.5).
    """
    sizes = [p.shape[1] for p in a_parts]
    a3 = [p[:, np.newaxis] for p in a_parts]
    b3 = [p[:, np.newaxis] for p in b_parts]
    observed = float(difference(a3, b3)[0])
    drawn = []
    per_draw = 2 * sum(p.size for p in a_parts)
    for masks in _swap_masks(sum(sizes), n_draws, per_draw, seed):
        parts = np.split(masks, np.cumsum(sizes)[:-1], axis=1)
        pairs = list(zip(parts, a3, b3, strict=True))
        drawn.append(
            difference(
                [np.where(m, b, a) for m, a, b in pairs], [np.where(m, a, b) for m, a, b in pairs]
            )
        )
    return _p_from_draws(observed, np.concatenate(drawn), _exact(sum(sizes), n_draws), False)


def _sign_flip_p_value(diffs: np.ndarray, n_draws: int, seed: int) -> float:
    """:func:`paired_swap_test` for a difference of means, on the seed-averaged differences."""
    d = diffs.mean(axis=0)
    drawn = [np.where(m, -d, d).mean(axis=1) for m in _swap_masks(d.size, n_draws, d.size, seed)]
    return _p_from_draws(float(d.mean()), np.concatenate(drawn), _exact(d.size, n_draws), False)


# --------------------------------------------------------------------------- intervals


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (the false discovery rate at which each is rejected).

    NaN p-values stay NaN and do not count among the tests.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def bootstrap_ci(
    per_unit: np.ndarray,
    statistic: Statistic = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "expanded",
    min_units: int = 1,
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic`` over the units (prompts) of ``per_unit``.

    ``per_unit`` is (n_units,) or (n_seeds, n_units) (see above). ``statistic``
    maps values to a number along ``axis`` (numpy reductions do). ``method``
    is one of :data:`METHODS`. The same ``seed`` gives the same interval.
    ``(nan, nan)`` when :func:`no_interval_reason` gives one: fewer than
    ``min_units`` units (or two), or every unit with the same values.
    """
    values = _as_units(per_unit)
    n = values.shape[1]
    if n == 0 or no_interval_reason(n, is_constant(values), max(min_units, 2)):
        return float("nan"), float("nan")

    def on_units(idx: np.ndarray) -> np.ndarray:
        return statistic(values[:, idx], axis=-1).mean(axis=0)

    low, high, _ = _resample_units(
        on_units, [n], values.size, n_resamples, confidence, seed, method
    )
    return low, high


def paired_difference_test(
    a_per_prompt: np.ndarray,
    b_per_prompt: np.ndarray,
    statistic: Statistic = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "expanded",
    min_units: int = 1,
) -> tuple[float, float, float, float]:
    """``statistic(a) - statistic(b)``, its paired bootstrap interval and two-sided p-value.

    ``a_per_prompt[..., i]`` and ``b_per_prompt[..., i]`` belong to the same
    prompt (e.g. a compressed model and its parent, 1-D or (n_seeds,
    n_prompts)); each resample draws prompts and keeps both values of a drawn
    prompt, so the prompt-to-prompt variation common to both models cancels.
    The p-value is the randomization test :func:`paired_swap_test` with
    ``n_resamples`` draws (exact for few prompts, never 0). Returns
    ``(difference, low, high, p)``. With fewer than ``min_units`` prompts
    (or two) the interval and p are NaN; when every prompt has the same
    difference, the interval is NaN and p is the test's (1 when it is 0).
    """
    a = _as_units(a_per_prompt, "a_per_prompt")
    b = _as_units(b_per_prompt, "b_per_prompt")
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    nan = float("nan")
    if a.size == 0:
        return nan, nan, nan, nan
    diff = _seed_mean(statistic, a) - _seed_mean(statistic, b)
    n = a.shape[1]
    if n < max(min_units, 2):
        return diff, nan, nan, nan
    if statistic is np.mean:
        p = _sign_flip_p_value(a - b, n_resamples, seed)
    else:

        def difference(x: list[np.ndarray], y: list[np.ndarray]) -> np.ndarray:
            return (statistic(x[0], axis=-1) - statistic(y[0], axis=-1)).mean(axis=0)

        p = paired_swap_test([a], [b], difference, n_resamples, seed)
    if is_constant(a - b):
        return diff, nan, nan, 1.0 if np.array_equal(a, b) else p

    def on_units(idx: np.ndarray) -> np.ndarray:
        return (statistic(a[:, idx], axis=-1) - statistic(b[:, idx], axis=-1)).mean(axis=0)

    low, high, _ = _resample_units(on_units, [n], 2 * a.size, n_resamples, confidence, seed, method)
    return diff, low, high, p


def paired_difference_ci(
    a_per_prompt: np.ndarray,
    b_per_prompt: np.ndarray,
    statistic: Statistic = np.mean,
    **kwargs: Any,
) -> tuple[float, float, float]:
    """:func:`paired_difference_test` without the p-value: ``(difference, low, high)``."""
    return paired_difference_test(a_per_prompt, b_per_prompt, statistic, **kwargs)[:3]


def group_disparity_ci(
    groups: Sequence[np.ndarray],
    kind: str = "gap",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "expanded",
    min_units: int = 1,
) -> tuple[float, float, float]:
    """Disparity between group means, with a bootstrap resampling prompts within each group.

    ``groups`` holds one array of per-prompt values per group (1-D, or
    (n_seeds, n_prompts) with the same seeds for every group). The statistic
    is :func:`group_disparity` of the group means (``"gap"``: largest minus
    smallest; ``"sd"``: their std, ddof=0), averaged over seeds. Each resample
    redraws every group's prompts from that group alone. Returns ``(value,
    low, high)``; the interval is NaN when the smallest group has fewer than
    ``min_units`` prompts (or two) or every group is constant. Needs two groups.
    """
    arrays = [_as_units(g, "group values") for g in groups]
    group_disparity([0.0, 0.0], kind)  # validates kind
    if len(arrays) < 2:
        raise ValueError(f"a disparity needs at least two groups, got {len(arrays)}")
    if any(g.shape[1] == 0 for g in arrays):
        raise ValueError("every group needs at least one prompt")
    if len({g.shape[0] for g in arrays}) > 1:
        raise ValueError("every group needs the same number of seeds")
    means = np.stack([g.mean(axis=1) for g in arrays])  # (G, S)
    value = float(np.mean([group_disparity(means[:, s], kind) for s in range(means.shape[1])]))
    smallest = min(g.shape[1] for g in arrays)
    if no_interval_reason(smallest, all(is_constant(g) for g in arrays), max(min_units, 2)):
        return value, math.nan, math.nan

    def on_units(*indices: np.ndarray) -> np.ndarray:
        rows = [g[:, idx].mean(axis=-1) for g, idx in zip(arrays, indices, strict=True)]
        stacked = np.stack(rows)  # (G, S, resamples)
        spread = stacked.max(axis=0) - stacked.min(axis=0) if kind == "gap" else stacked.std(0)
        return spread.mean(axis=0)

    low, high, _ = _resample_units(
        on_units,
        [g.shape[1] for g in arrays],
        sum(g.size for g in arrays),
        n_resamples,
        confidence,
        seed,
        method,
    )
    return value, low, high


# --------------------------------------------------------------------------- corrected disparity


def _corrected_of(drawn: Sequence[np.ndarray]) -> np.ndarray:
    """Between-group variance of the group means minus its expected sampling variance.

    ``drawn[g]`` is (n_seeds, ..., n_g): group g's per-prompt values, with any
    batch axes (resamples, draws) in between. With G group means m_g of n_g
    prompts and sampling variances v_g = s_g^2 / n_g, ``E[var_g(m_g)] =
    tau^2 + mean_g(v_g)`` when the group means differ by a true variance
    tau^2; the returned estimate of tau^2 is ``var_g(m_g) - mean_g(v_g)``
    (ddof 1 both), averaged over seeds.
    """
    means = np.stack([d.mean(axis=-1) for d in drawn])
    noise = np.stack([d.var(axis=-1, ddof=1) / d.shape[-1] for d in drawn])
    return (means.var(axis=0, ddof=1) - noise.mean(axis=0)).mean(axis=0)


def _corrected_disparity(arrays: Sequence[np.ndarray], indices: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`_corrected_of` of each group's prompts at ``indices[g]`` (..., n_g)."""
    return _corrected_of([values[:, idx] for values, idx in zip(arrays, indices, strict=True)])


def corrected_disparity(groups: Sequence[np.ndarray]) -> float:
    """The noise-corrected disparity of :func:`corrected_disparity_test`, without an interval."""
    arrays = [a for a in (_as_units(g, "group values") for g in groups) if a.shape[1] >= 2]
    return float(_corrected_of(arrays))


def group_permutation_test(
    arrays: Sequence[np.ndarray], n_draws: int = 2000, seed: int = 0
) -> float:
    """One-sided p-value of "the groups do not differ" for the corrected disparity.

    Each draw deals the prompts (all seeds of a prompt together) back into
    groups of the same sizes at random and recomputes the disparity; p is the
    share of draws at least as large as the observed one, with the ``+1`` of
    a Monte Carlo test.
    """
    pooled = np.concatenate(arrays, axis=1)
    cuts = np.cumsum([a.shape[1] for a in arrays])[:-1]
    rng = np.random.default_rng(seed)
    step = _batch(pooled.size, n_draws)
    drawn = []
    for start in range(0, n_draws, step):
        order = np.argsort(rng.random((min(step, n_draws - start), pooled.shape[1])), axis=1)
        drawn.append(_corrected_of(np.split(pooled[:, order], cuts, axis=-1)))
    return _p_from_draws(float(_corrected_of(arrays)), np.concatenate(drawn), False, True)


def corrected_disparity_test(
    groups: Sequence[np.ndarray],
    parent_groups: Sequence[np.ndarray] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "expanded",
    min_units: int = 2,
) -> tuple[float, float, float, float]:
    """Noise-corrected disparity between groups, with a bootstrap over prompts within groups.

    ``groups`` holds each group's per-prompt values (1-D or (n_seeds, n)).
    The disparity is :func:`_corrected_of`: 0 when the groups differ by no
    more than their sampling noise (it can then come out negative), the
    variance of the true group means otherwise, in the metric's squared
    units. Unlike the gap between the largest and smallest group mean, it
    does not grow with within-group noise, so a model whose text varies less
    does not look less biased. With ``parent_groups`` (the same prompts,
    another model) the result is the paired difference of the two models'
    disparities, each resample drawing the same prompts for both, and p
    comes from :func:`paired_swap_test`; without, from
    :func:`group_permutation_test`. Groups of fewer than two prompts are left
    out (their noise cannot be estimated); when the smallest remaining group
    has fewer than ``min_units`` prompts, the interval and p are NaN.
    Returns ``(value, low, high, p)``.
    """
    arrays = [_as_units(g, "group values") for g in groups]
    others = [_as_units(g, "parent group values") for g in parent_groups] if parent_groups else None
    keep = [i for i, g in enumerate(arrays) if g.shape[1] >= 2]
    if len(keep) < 2:
        raise ValueError(f"a disparity needs two groups of two or more prompts, got {len(keep)}")
    arrays = [arrays[i] for i in keep]
    others = [others[i] for i in keep] if others else None

    def statistic(*indices: np.ndarray) -> np.ndarray:
        value = _corrected_disparity(arrays, indices)
        return value - _corrected_disparity(others, indices) if others else value

    value = float(statistic(*(np.arange(g.shape[1]) for g in arrays)))
    if min(g.shape[1] for g in arrays) < min_units:
        return value, math.nan, math.nan, math.nan
    low, high, distribution = _resample_units(
        statistic,
        [g.shape[1] for g in arrays],
        2 * sum(g.size for g in arrays),
        n_resamples,
        confidence,
        seed,
        method,
    )
    if method != "BCa":
        # Resampling prompts adds sampling noise to the group means that the
        # resampled noise estimate only partly removes: the resamples centre on
        # the uncorrected variance, not on the estimate. Shift the percentile
        # endpoints back by that bias (BCa's z0 already corrects for it).
        bias = float(np.mean(distribution)) - value
        low, high = low - bias, high - bias
    if others is None:
        return value, low, high, group_permutation_test(arrays, n_resamples, seed)

    def difference(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
        return _corrected_of(a) - _corrected_of(b)

    return value, low, high, paired_swap_test(arrays, others, difference, n_resamples, seed)
