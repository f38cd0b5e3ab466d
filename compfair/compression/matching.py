"""The strength search of a quality-matched control (no torch: a pure function of a callable).

:func:`match_strength` finds a strength whose perplexity ratio is within a
relative tolerance of a target, evaluating the ratio as few times as it can
(each evaluation is a held-out pass of a model), and records every try.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MatchResult:
    """The strength found, its ratio, and every (strength, ratio) tried, in order."""

    strength: float
    ratio: float
    tries: tuple[tuple[float, float], ...]


def _within(ratio: float, target: float, tolerance: float) -> bool:
    return math.isfinite(ratio) and abs(ratio / target - 1.0) <= tolerance


def match_strength(
    ratio_at: Callable[[float], float],
    target: float,
    low: float,
    high: float,
    tolerance: float = 0.05,
    max_tries: int = 12,
) -> MatchResult:
    """A strength in ``[low, high]`` whose ``ratio_at`` is within ``tolerance`` of ``target``.

    The ratio is taken to grow with the strength. Both bounds are tried first;
    a target below the ratio at ``low`` or above the one at ``high`` (beyond
    the tolerance) raises ``ValueError`` naming the bounds and their ratios.
    Then the next strength is interpolated between the closest tries below
    and above the target, linearly in log(log(ratio)) against log(strength)
    (the excess log-perplexity of a degradation grows roughly as a power of
    its strength: about 2.3 for weight noise on SmolLM2, where one step then
    lands within the tolerance; log(ratio) while the low end's ratio is not
    above 1). It is moved to the bracket's geometric midpoint when it lands
    in the bracket's outer tenths or when the same end of the bracket moved
    twice in a row (the interpolation is then converging from one side), so
    the bracket keeps shrinking on a curved, flat or non-monotone stretch. At most
    ``max_tries`` evaluations; without a match, ``ValueError`` listing every
    try. A non-finite ratio (a destroyed model) counts as above the target.
    """
    if not (0 < low < high) or target <= 0 or tolerance <= 0 or max_tries < 2:
        raise ValueError(
            "need 0 < low < high, target > 0, tolerance > 0 and max_tries >= 2: got "
            f"low={low}, high={high}, target={target}, tolerance={tolerance}, max_tries={max_tries}"
        )
    tries: list[tuple[float, float]] = []

    def attempt(strength: float) -> float:
        ratio = float(ratio_at(strength))
        tries.append((strength, ratio))
        return ratio

    for bound in (low, high):
        if _within(attempt(bound), target, tolerance):
            return MatchResult(bound, tries[-1][1], tuple(tries))
    (s_lo, r_lo), (s_hi, r_hi) = tries
    if not (r_lo < target < r_hi):
        raise ValueError(
            f"cannot reach a perplexity ratio of {target:.4g} within strengths [{low:g}, {high:g}]: "
            f"they give ratios {r_lo:.4g} to {r_hi:.4g}"
        )
    moved: list[bool] = []  # which end each try replaced (True: the low one)
    while len(tries) < max_tries:
        bisect = len(moved) >= 2 and moved[-1] == moved[-2]
        strength = _next_strength(s_lo, r_lo, s_hi, r_hi, target, bisect)
        ratio = attempt(strength)
        if _within(ratio, target, tolerance):
            return MatchResult(strength, ratio, tuple(tries))
        moved.append(math.isfinite(ratio) and ratio < target)
        if moved[-1]:
            s_lo, r_lo = strength, ratio
        else:
            s_hi, r_hi = strength, ratio
    listed = ", ".join(f"{s:.4g}: {r:.4g}" for s, r in tries)
    raise ValueError(
        f"no strength within {tolerance:.0%} of a perplexity ratio of {target:.4g} after "
        f"{len(tries)} tries (strength: ratio {listed})"
    )


def _next_strength(
    s_lo: float, r_lo: float, s_hi: float, r_hi: float, target: float, bisect: bool
) -> float:
    """Interpolation of log(log(ratio)) (log(ratio) if ``r_lo <= 1``) against log(strength)
    inside the bracket, or its geometric midpoint (``bisect``, an infinite ``r_hi``, or an
    interpolation that lands in the bracket's outer tenths)."""
    a, b = math.log(s_lo), math.log(s_hi)
    middle = math.exp((a + b) / 2)
    if bisect or not (math.isfinite(r_hi) and r_lo > 0 and r_hi > r_lo):
        return middle
    f = _log_excess if r_lo > 1 else math.log
    t = (f(target) - f(r_lo)) / (f(r_hi) - f(r_lo))
    if not 0.1 <= t <= 0.9:
        return middle
    return math.exp(a + t * (b - a))


def _log_excess(ratio: float) -> float:
    """log(log(ratio)): linear in log(strength) when the excess log-perplexity is a power."""
    return math.log(math.log(ratio))


__all__ = ["MatchResult", "match_strength"]
