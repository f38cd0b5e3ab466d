"""Quality guards: is a model's text still language, or has compression broken it?

A heavily pruned model can look "non-toxic" simply because it emits empty
strings, one token repeated, fewer words, or word salad. These statistics
catch that, per (seed, model, prompt set), each a statistic over prompts:

- ``distinct_n`` (DExperts' dist-n, Liu et al. 2021): distinct n-grams over
  the number of words of each prompt's K continuations (whitespace words),
  averaged over prompts; repetition drives it down;
- ``mean_words``: words per continuation, averaged over prompts; a model that
  writes less drives it down (distinct-n, a ratio to the words, barely moves
  when every continuation is half as long);
- ``empty_share``: share of empty or whitespace-only continuations;
- ``teacher_perplexity``: perplexity of the continuations under the teacher,
  conditioned on their prompts, from the token ids the model drew
  (:mod:`compfair.perplexity`); word salad drives it up;
- gender polarity (Dhamala et al. 2021, simplified to word counts): shares of
  continuations with more male than female words and vice versa.

:func:`quality_report` writes them, with their per-prompt values, to
``quality/seed-{seed}/{model}.json``. :func:`check_guards` holds a model to
the configured thresholds (:data:`GUARDS`), absolute and relative to its
parent, each with a bootstrap interval over prompts (held-out perplexity:
over windows), so that a breach is "clear" when the whole interval is past
the limit and "possible" when only the point estimate is.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from compfair.io import InputError, PathLike, read_jsonl, write_json

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z]+")


# --------------------------------------------------------------------------- text statistics


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams of ``texts`` over their number of words (DExperts' dist-n; 0.0 without words).

    Words are the whitespace-separated tokens of each text, case kept; n-grams
    never cross from one text into the next. Dividing by the words rather
    than by the n-grams is DExperts' definition (Liu et al. 2021,
    ``scripts/evaluation/evaluate_generations.py``), which splits on single
    spaces and so counts an empty text as one (empty) word; here an empty text
    has no words. ``distinct_n(["a b a b"], 2)`` is 2/4 (``a b``, ``b a``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = text.split()
        total += len(words)
        seen.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return len(seen) / total if total else 0.0


def word_count(text: str) -> int:
    """Number of whitespace-separated words of ``text``."""
    return len(text.split())


def empty_share(texts: Sequence[str]) -> float:
    """Share of texts that are empty or whitespace only (0.0 for no texts)."""
    if not texts:
        return 0.0
    return sum(1 for t in texts if not t.strip()) / len(texts)


@cache
def gender_words() -> tuple[frozenset[str], frozenset[str]]:
    """The male and female word lists of ``compfair/resources/gender_words.json``."""
    text = resources.files("compfair").joinpath("resources/gender_words.json").read_text("utf-8")
    data = json.loads(text)
    male, female = frozenset(data["male"]), frozenset(data["female"])
    if male & female:
        raise ValueError(f"gender word lists overlap: {sorted(male & female)}")
    return male, female


def gender_counts(text: str) -> tuple[int, int]:
    """Number of male and of female words in ``text`` (alphabetic tokens, lower case)."""
    male, female = gender_words()
    words = _WORD.findall(text.lower())
    return sum(w in male for w in words), sum(w in female for w in words)


def gender_polarity(texts: Sequence[str]) -> dict[str, float]:
    """Shares of texts with more male than female words, and with more female than male.

    Returns ``{"gender_polarity_male_share", "gender_polarity_female_share"}``;
    texts with no gendered words, or as many of each, count in neither share.
    No texts give 0.0 for both.
    """
    male = female = 0
    for text in texts:
        n_male, n_female = gender_counts(text)
        male += n_male > n_female
        female += n_female > n_male
    n = len(texts)
    return {
        "gender_polarity_male_share": male / n if n else 0.0,
        "gender_polarity_female_share": female / n if n else 0.0,
    }


def continuations_by_prompt(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each prompt's continuations, in file order, keyed by prompt id in sorted order."""
    by_prompt: dict[str, list[str]] = {}
    for row in rows:
        by_prompt.setdefault(str(row["prompt_id"]), []).append(row["continuation"])
    return dict(sorted(by_prompt.items()))


#: The per-prompt text statistics of a quality block: each is a mean over prompts.
TEXT_UNITS = ("distinct_1", "distinct_2", "distinct_3", "mean_words", "empty_share")


def prompt_units(rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Per-prompt text statistics of generations rows (``prompt_id`` and ``continuation``).

    Returns ``{"prompt_id": [...]}`` (sorted) and, aligned with it, each of
    :data:`TEXT_UNITS`: the prompt's distinct-n over its K continuations
    (:func:`distinct_n`; 0 for a prompt whose continuations hold no word: it
    shows no variety), its mean words per continuation and its share of empty
    continuations.
    """
    by_prompt = continuations_by_prompt(rows)
    texts = list(by_prompt.values())
    return {
        "prompt_id": list(by_prompt),
        **{f"distinct_{n}": [distinct_n(t, n) for t in texts] for n in (1, 2, 3)},
        "mean_words": [sum(map(word_count, t)) / len(t) for t in texts],
        "empty_share": [empty_share(t) for t in texts],
    }


def distinct_n_per_prompt(rows: Sequence[Mapping[str, Any]], n: int) -> float:
    """Distinct-n of each prompt's continuations, averaged over prompts (DExperts' protocol).

    ``rows`` have ``prompt_id`` and ``continuation``; 0.0 for no rows.
    """
    texts = list(continuations_by_prompt(rows).values())
    return sum(distinct_n(t, n) for t in texts) / len(texts) if texts else 0.0


# --------------------------------------------------------------------------- generations


def read_generations(path: Path) -> list[dict[str, Any]]:
    """Rows of a generations file; each needs ``prompt_id`` and string ``prompt`` and ``continuation``."""
    rows = read_jsonl(path, required=("prompt_id", "prompt", "continuation"))
    if not rows:
        raise InputError(f"{path}: no generations")
    for i, row in enumerate(rows, start=1):
        if not isinstance(row["prompt"], str) or not isinstance(row["continuation"], str):
            raise InputError(f"{path}, row {i}: 'prompt' and 'continuation' must be strings")
    return rows


# --------------------------------------------------------------------------- the report

#: The metrics of one prompt set's block of a quality report.
QUALITY_METRICS = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "mean_words",
    "empty_share",
    "teacher_perplexity",
    "gender_polarity_male_share",
    "gender_polarity_female_share",
)


def teacher_units(
    prompt_ids: Sequence[str],
    scored: Sequence[Mapping[str, Any]],
    per_row: Sequence[tuple[float, int]],
) -> dict[str, list]:
    """Summed teacher NLL and scored tokens per prompt, aligned with ``prompt_ids``.

    ``per_row`` holds ``(nll, tokens)`` of each row of ``scored``; a prompt
    none of whose rows was scored has ``None`` in both lists (a scored prompt
    whose continuations are all empty has 0 tokens).
    """
    nll: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for row, (row_nll, row_tokens) in zip(scored, per_row, strict=True):
        key = str(row["prompt_id"])
        nll[key] = nll.get(key, 0.0) + row_nll
        tokens[key] = tokens.get(key, 0) + row_tokens
    return {
        "teacher_nll": [nll.get(i) for i in prompt_ids],
        "teacher_tokens": [tokens.get(i) for i in prompt_ids],
    }


def promptset_quality(
    rows: Sequence[Mapping[str, Any]],
    scored: Sequence[Mapping[str, Any]],
    per_row: Sequence[tuple[float, int]],
    teacher_input: str,
) -> dict:
    """The quality block of one prompt set's generations (see :func:`quality_report`).

    ``scored`` are the rows the teacher scored, ``per_row`` their ``(nll, tokens)``,
    ``teacher_input`` what it scored (``"token_ids"`` or ``"text"``).
    """
    texts = [r["continuation"] for r in rows]
    units = prompt_units(rows)
    units.update(teacher_units(units["prompt_id"], scored, per_row))
    total, n_tokens = sum(n for n, _ in per_row), sum(c for _, c in per_row)
    return {
        **{name: float(np.mean(units[name])) for name in TEXT_UNITS if name != "empty_share"},
        "empty_share": empty_share(texts),
        "teacher_perplexity": math.exp(total / n_tokens) if n_tokens else None,
        "teacher_input": teacher_input,
        "n_continuations": len(texts),
        "n_scored_tokens": n_tokens,
        **gender_polarity(texts),
        "units": units,
    }


def teacher_scored_rows(
    rows: Sequence[Mapping[str, Any]], samples: int | None, prompts: int | None
) -> list[Mapping[str, Any]]:
    """The rows the teacher scores: the first ``samples`` samples (None: all) of at most
    ``prompts`` prompts (None: all), spread evenly over the sorted prompt ids.

    The choice depends only on the prompt ids, so a model and its parent are scored on the
    same continuations (the prompt sets of every model are the same).
    """
    ids = sorted({str(r["prompt_id"]) for r in rows})
    if prompts is not None and prompts < len(ids):
        ids = [ids[i] for i in np.linspace(0, len(ids) - 1, prompts).round().astype(int)]
    keep = set(ids)
    return [
        r
        for r in rows
        if str(r["prompt_id"]) in keep and (samples is None or int(r.get("sample", 0)) < samples)
    ]


def quality_report(
    generations: Mapping[str, PathLike],
    teacher_dir: PathLike,
    out_json: PathLike,
    batch_size: int = 32,
    teacher_samples: int | None = 1,
    teacher_prompts: int | None = None,
) -> dict[str, Any]:
    """Every quality statistic of one model's generations, per prompt set; write and return it.

    ``generations`` maps a prompt set to its generations file. Writes
    ``{"promptsets": {name: {"distinct_1", "distinct_2", "distinct_3",
    "mean_words", "empty_share", "teacher_perplexity", "teacher_input",
    "n_continuations", "n_scored_tokens", "gender_polarity_male_share",
    "gender_polarity_female_share", "units"}}}`` to ``out_json`` atomically.
    ``units`` holds the per-prompt values the guards' intervals resample
    (:func:`prompt_units`, :func:`teacher_units`). ``teacher_perplexity``
    is null when no continuation is non-empty; the teacher scores the token
    ids the model drew, conditioned on the prompt ids it saw
    (``teacher_input`` ``"token_ids"``), or the re-tokenised text when the
    file's ids cannot be scored (``"text"``, logged with the reason; see
    :func:`compfair.perplexity.encode_rows`). It is computed on the first
    ``teacher_samples`` samples of every prompt (None: all): the teacher
    re-reads each prompt for every sample it scores, so this guard would
    otherwise cost about as much as generating; the same samples of the
    parent are scored, so the ratio stays paired. With ``teacher_prompts``
    it is computed on at most that many prompts of each set
    (:func:`teacher_scored_rows`). The other statistics use every sample.
    """
    # Imported here: the rest of this module serves jobs that never load a model.
    from compfair.perplexity import load_scorer_model, rows_nll

    teacher = load_scorer_model(teacher_dir)  # once for every prompt set
    blocks = {}
    for promptset, path in sorted(generations.items()):
        rows = read_generations(Path(path))
        scored = teacher_scored_rows(rows, teacher_samples, teacher_prompts)
        per_row, source = rows_nll(*teacher, scored, batch_size, where=str(path))
        blocks[promptset] = block = promptset_quality(rows, scored, per_row, source)
        log.info(
            "%s: distinct-2 %.3f, %.1f words, empty %.3f, teacher perplexity %s (%s) over %d "
            "continuations",
            *(path, block["distinct_2"], block["mean_words"], block["empty_share"]),
            *(block["teacher_perplexity"], source, block["n_continuations"]),
        )
    report = {"promptsets": blocks}
    write_json(out_json, report)
    return report


# --------------------------------------------------------------------------- the guards


@dataclass(frozen=True)
class Units:
    """Per-unit values of one guard statistic (units: prompts, or held-out windows).

    With ``tokens`` None the statistic over a set of units is the mean of their
    ``values``; with ``tokens`` it is a perplexity, ``exp(sum(values) /
    sum(tokens))`` (``values`` are summed NLLs in nats). ``ids`` name the units:
    a model and its parent are paired on the ids both have.
    """

    ids: tuple[str, ...]
    values: np.ndarray
    tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.values) != len(self.ids) or (
            self.tokens is not None and len(self.tokens) != len(self.ids)
        ):
            raise ValueError("Units: ids, values and tokens must have one entry per unit")

    def take(self, ids: Sequence[str]) -> Units:
        """The units named ``ids``, in that order."""
        where = {unit: i for i, unit in enumerate(self.ids)}
        index = np.array([where[unit] for unit in ids], dtype=np.intp)
        tokens = None if self.tokens is None else self.tokens[index]
        return Units(tuple(ids), self.values[index], tokens)

    def statistic(self, index: np.ndarray) -> np.ndarray:
        """The statistic over the units at positions ``index`` (shape ``(..., n)``), per row."""
        if self.tokens is None:
            return self.values[index].mean(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.exp(self.values[index].sum(axis=-1) / self.tokens[index].sum(axis=-1))


@dataclass(frozen=True)
class GuardInput:
    """One model's guarded values (a prompt set's block, and/or ``perplexity``) and, where
    known, the per-unit values each can be recomputed from (no units: no interval)."""

    values: Mapping[str, Any]
    units: Mapping[str, Units] = field(default_factory=dict)


@dataclass(frozen=True)
class Guard:
    """A guarded ``metric`` and how it is compared with its limit.

    ``kind``: ``"ratio"`` (model / parent), ``"drop"`` (1 - model / parent),
    both relative to the parent and broken above the limit; ``"max"`` and
    ``"min"``, the model's own value, broken above / below the limit.
    """

    metric: str
    kind: str

    @property
    def relative(self) -> bool:
        return self.kind in ("ratio", "drop")


#: The guards by their threshold key (``quality_thresholds.<key>``), in reporting order.
GUARDS = {
    "max_perplexity_ratio": Guard("perplexity", "ratio"),
    "max_teacher_perplexity_ratio": Guard("teacher_perplexity", "ratio"),
    "max_distinct_2_drop": Guard("distinct_2", "drop"),
    "max_length_drop": Guard("mean_words", "drop"),
    "max_empty_share": Guard("empty_share", "max"),
    "max_teacher_perplexity": Guard("teacher_perplexity", "max"),
    "min_distinct_2": Guard("distinct_2", "min"),
}


@dataclass(frozen=True)
class GuardResult:
    """A guard's statistic (ratio, drop or own value; NaN: undefined), its interval
    (NaN: none), at ``confidence``, and the limit it is held to."""

    key: str
    guard: Guard
    value: float
    low: float
    high: float
    limit: float
    confidence: float = math.nan

    def _beyond(self, x: float) -> bool:
        return x < self.limit if self.guard.kind == "min" else x > self.limit

    @property
    def broken(self) -> bool:
        """The point estimate crosses the limit, or the statistic cannot be computed."""
        return math.isnan(self.value) or self._beyond(self.value)

    @property
    def clear(self) -> bool:
        """Broken with the whole interval beyond the limit ("clearly degraded")."""
        bound = self.high if self.guard.kind == "min" else self.low
        defined = not (math.isnan(self.value) or math.isnan(bound))
        return self.broken and defined and self._beyond(bound)

    def _number(self, x: float) -> str:
        return f"{x:.1%}" if self.guard.kind == "drop" else f"{x:.3g}"

    def describe(self) -> str:
        """``"teacher_perplexity 2.25 x the parent's > 2 (clear, 95% CI 2.01 to 2.6)"``."""
        metric, kind = self.guard.metric, self.guard.kind
        if math.isnan(self.value):
            where = " relative to the parent" if self.guard.relative else ""
            return f"{metric}{where} is undefined (possible, cannot be checked)"
        text = {
            "ratio": f"{metric} {self.value:.3g} x the parent's > {self.limit:g}",
            "drop": f"{metric} {self.value:.1%} below the parent's > {self.limit:.0%}",
            "max": f"{metric} {self.value:.4g} > {self.limit:g}",
            "min": f"{metric} {self.value:.4g} < {self.limit:g}",
        }[kind]
        if math.isnan(self.low) or math.isnan(self.high):
            return f"{text} (possible, no interval)"
        level = f"{100 * self.confidence:g}% CI"
        span = f"{self._number(self.low)} to {self._number(self.high)}"
        return f"{text} ({'clear' if self.clear else 'possible'}, {level} {span})"


def _undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _paired_statistic(
    guard: Guard, mine: Units, parent: Units | None
) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """The guard's statistic as a function of unit positions, and the number of units."""
    if parent is None:
        return mine.statistic, len(mine.ids)
    kept = set(parent.ids)
    common = [unit for unit in mine.ids if unit in kept]
    a, b = mine.take(common), parent.take(common)

    def statistic(index: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = a.statistic(index) / b.statistic(index)
        return ratio if guard.kind == "ratio" else 1.0 - ratio

    return statistic, len(common)


def _with_interval(
    guard: Guard, mine: Units, parent: Units | None, bootstrap: Mapping[str, Any]
) -> tuple[float, float, float] | None:
    """``(value, low, high)`` of the guard's statistic over the units, the interval a
    bootstrap over units (:func:`compfair.metrics.bootstrap_ci`; for a relative guard
    paired: each resample draws the same units of model and parent). None when model
    and parent share no unit."""
    from compfair.metrics import bootstrap_ci  # scipy only when an interval is asked for

    statistic, n = _paired_statistic(guard, mine, parent)
    if n == 0:
        log.warning("%s: the model and its parent share no unit; no interval", guard.metric)
        return None
    positions = np.arange(n)
    value = float(statistic(positions))

    def on_positions(values: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(np.moveaxis(values, axis, -1).astype(np.intp))

    low, high = bootstrap_ci(positions.astype(float), statistic=on_positions, **bootstrap)
    return value, float(low), float(high)


def _point(guard: Guard, value: Any, base: Any) -> float:
    """The guard's statistic from the point values alone (NaN: undefined)."""
    if _undefined(value) or (guard.relative and (_undefined(base) or base <= 0)):
        return math.nan
    if guard.kind == "ratio":
        return float(value) / float(base)
    if guard.kind == "drop":
        return 1.0 - float(value) / float(base)
    return float(value)


def check_guards(
    thresholds: Mapping[str, Any],
    mine: GuardInput,
    parent: GuardInput | None = None,
    bootstrap: Callable[[str], Mapping[str, Any]] | None = None,
) -> list[GuardResult]:
    """Every configured guard that applies to a model, broken or not, in :data:`GUARDS` order.

    ``thresholds`` holds keys of :data:`GUARDS` (None switches one off; an
    unknown key raises :class:`InputError`); a metric absent from
    ``mine.values`` is not checked, nor a relative guard without ``parent``
    or without the metric there. A guarded value that is present but
    undefined (NaN, null), or a parent's value that is not positive, gives an
    undefined statistic, which counts as broken: it cannot be checked.
    ``bootstrap(key)`` gives the keyword arguments of
    :func:`compfair.metrics.bootstrap_ci` for guard ``key``; with it, and units
    on both sides, the statistic is recomputed over the units (the units both
    have, for a relative guard) and gets an interval. Without (None, or no
    units) it comes from the point values and has no interval.
    """
    unknown = sorted(set(thresholds) - set(GUARDS))
    if unknown:
        raise InputError(f"quality_thresholds.{unknown[0]}: unknown guard")
    results = []
    for key, guard in GUARDS.items():
        limit = thresholds.get(key)
        if limit is None or guard.metric not in mine.values:
            continue
        if guard.relative and (parent is None or guard.metric not in parent.values):
            continue
        options = dict(bootstrap(key)) if bootstrap is not None else {}
        results.append(_guard_result(key, float(limit), mine, parent, options))
    return results


def _guard_result(
    key: str,
    limit: float,
    mine: GuardInput,
    parent: GuardInput | None,
    options: Mapping[str, Any],
) -> GuardResult:
    """One guard of :func:`check_guards`: from the units when both sides have them, with
    ``options`` (bootstrap keyword arguments, empty: no interval), else from the values."""
    guard = GUARDS[key]
    other = parent if guard.relative else None
    base = other.values[guard.metric] if other is not None else None
    found = (_point(guard, mine.values[guard.metric], base), math.nan, math.nan)
    units = mine.units.get(guard.metric)
    theirs = other.units.get(guard.metric) if other is not None else None
    if options and not math.isnan(found[0]) and units is not None:
        if theirs is not None or not guard.relative:
            found = _with_interval(guard, units, theirs, options) or found
    confidence = float(options.get("confidence", math.nan))
    return GuardResult(key, guard, *found, limit=limit, confidence=confidence)
