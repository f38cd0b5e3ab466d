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
    power: float = 2.0,
) -> MatchResult:
    """A strength in ``[low, high]`` whose ``ratio_at`` is within ``tolerance`` of ``target``.

    The ratio is taken to grow with the strength. The first try is the bounds'
    geometric midpoint. Until a try lies on each side of the target, the next
    strength is extrapolated from the last try, taking the excess
    log-perplexity ``log(ratio)`` to grow as ``strength ** power`` (a
    perturbation of a model at a minimum of its loss raises the loss by the
    square of its size: 2 for weight noise; 1 for random pruning, whose
    squared size grows with the share pruned), or as the last two tries'
    measured power once there are two with a ratio above 1; clipped to the
    bounds. A target beyond the ratio at a bound (beyond the tolerance)
    raises ``ValueError`` naming the bounds and that ratio. Then the next
    strength is interpolated between the closest tries below and above the
    target, linearly in log(log(ratio)) against log(strength) (log(ratio)
    while the low end's ratio is not above 1); it is moved to the bracket's
    geometric midpoint when it lands in the bracket's outer 2 % or when the
    same end of the bracket moved twice in a row, so the bracket keeps
    shrinking on a curved, flat or non-monotone stretch. At most ``max_tries``
    evaluations; without a match, ``ValueError`` listing every try. A
    non-finite ratio (a destroyed model) counts as above the target.
    """
    if not (0 < low < high) or target <= 0 or tolerance <= 0 or max_tries < 2 or power <= 0:
        raise ValueError(
            "need 0 < low < high, target > 0, tolerance > 0, max_tries >= 2 and power > 0: "
            f"got low={low}, high={high}, target={target}, tolerance={tolerance}, "
            f"max_tries={max_tries}, power={power}"
        )
    tries: list[tuple[float, float]] = []

    def attempt(strength: float) -> float:
        ratio = float(ratio_at(strength))
        tries.append((strength, ratio))
        return ratio

    strength = math.sqrt(low * high)
    while len(tries) < max_tries:
        ratio = attempt(strength)
        if _within(ratio, target, tolerance):
            return MatchResult(strength, ratio, tuple(tries))
        if _bracket(tries, target) is not None:
            break
        _check_reachable(strength, ratio, target, low, high)
        strength = min(high, max(low, _extrapolate(tries, target, power)))
    return _refine(attempt, tries, target, tolerance, max_tries)


def _below(ratio: float, target: float) -> bool:
    return math.isfinite(ratio) and ratio < target


def _bracket(
    tries: list[tuple[float, float]], target: float
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The closest tries below and above the target, or None while one side has none."""
    below = [t for t in tries if _below(t[1], target)]
    above = [t for t in tries if not _below(t[1], target)]
    if not below or not above:
        return None
    return max(below), min(above)


def _check_reachable(strength: float, ratio: float, target: float, low: float, high: float) -> None:
    """Raise when the try at a bound is already on the wrong side of the target."""
    at_low = strength == low and not _below(ratio, target)
    at_high = strength == high and _below(ratio, target)
    if at_low or at_high:
        raise ValueError(
            f"cannot reach a perplexity ratio of {target:.4g} within strengths [{low:g}, {high:g}]: "
            f"the {'lowest' if at_low else 'highest'} strength {strength:g} gives {ratio:.4g}"
        )


def _extrapolate(tries: list[tuple[float, float]], target: float, power: float) -> float:
    """The next strength beyond the last try, toward the target (no bracket yet)."""
    strength, ratio = tries[-1]
    if not math.isfinite(ratio):
        return strength / 4
    if ratio <= 1.0:
        return strength * 4
    measured = [(math.log(s), _log_excess(r)) for s, r in tries[-2:] if math.isfinite(r) and r > 1]
    if len(measured) == 2 and measured[0][0] != measured[1][0]:
        slope = (measured[1][1] - measured[0][1]) / (measured[1][0] - measured[0][0])
        power = slope if 0.25 <= slope <= 8 else power
    step = (math.log(math.log(target)) - _log_excess(ratio)) / power if target > 1 else -math.log(4)
    return strength * math.exp(max(-math.log(16), min(math.log(16), step)))


def _refine(
    attempt: Callable[[float], float],
    tries: list[tuple[float, float]],
    target: float,
    tolerance: float,
    max_tries: int,
) -> MatchResult:
    """Shrink the bracket the tries found until a try is within the tolerance."""
    bracket = _bracket(tries, target)
    moved: list[bool] = []  # which end each try replaced (True: the low one)
    while bracket is not None and len(tries) < max_tries:
        (s_lo, r_lo), (s_hi, r_hi) = bracket
        bisect = len(moved) >= 2 and moved[-1] == moved[-2]
        strength = _next_strength(s_lo, r_lo, s_hi, r_hi, target, bisect)
        ratio = attempt(strength)
        if _within(ratio, target, tolerance):
            return MatchResult(strength, ratio, tuple(tries))
        moved.append(_below(ratio, target))
        bracket = ((strength, ratio), bracket[1]) if moved[-1] else (bracket[0], (strength, ratio))
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
    interpolation that lands in the bracket's outer 2 %)."""
    a, b = math.log(s_lo), math.log(s_hi)
    middle = math.exp((a + b) / 2)
    if bisect or not (math.isfinite(r_hi) and r_lo > 0 and r_hi > r_lo):
        return middle
    f = _log_excess if r_lo > 1 else math.log
    t = (f(target) - f(r_lo)) / (f(r_hi) - f(r_lo))
    if not 0.02 <= t <= 0.98:
        return middle
    return math.exp(a + t * (b - a))


def _log_excess(ratio: float) -> float:
    """log(log(ratio)): linear in log(strength) when the excess log-perplexity is a power."""
    return math.log(math.log(ratio))


__all__ = ["MatchResult", "match_strength"]
