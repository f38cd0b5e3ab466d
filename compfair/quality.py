"""Quality guards: is a model's text still language, or has compression broken it?

A heavily pruned model can look "non-toxic" simply because it emits empty
strings, one token repeated, or word salad. These guards catch that, per
(seed, model, prompt set):

- ``distinct_n`` (Li et al. 2016): unique n-grams / all n-grams of each
  prompt's K continuations (lower-cased whitespace tokens), averaged over
  prompts as in DExperts (Liu et al. 2021); repetition drives it down;
- ``empty_share``: share of empty or whitespace-only continuations;
- ``teacher_perplexity``: perplexity of the continuations under the teacher,
  conditioned on their prompts (:mod:`compfair.perplexity`); word salad drives it up;
- gender polarity (Dhamala et al. 2021, simplified to word counts): shares of
  continuations with more male than female words and vice versa.

:func:`quality_report` writes them, per prompt set, to
``quality/seed-{seed}/{model}.json``; :func:`degeneracy_reasons` applies the
configured thresholds, absolute and relative to the model's parent.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
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
    """Unique n-grams over all n-grams of ``texts`` (0.0 when there are none).

    Tokens are the whitespace-separated words of each lower-cased text;
    n-grams never cross from one text into the next. ``distinct_n(["a b a b"], 2)``
    is 2/3 (``a b``, ``b a``, ``a b``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        tokens = text.lower().split()
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


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


def distinct_n_per_prompt(rows: Sequence[Mapping[str, Any]], n: int) -> float:
    """Distinct-n of each prompt's continuations, averaged over prompts (DExperts' protocol).

    ``rows`` have ``prompt_id`` and ``continuation``. A prompt whose
    continuations hold no n-gram at all (all empty or too short) counts as 0:
    it shows no variety. 0.0 for no rows.
    """
    by_prompt: dict[str, list[str]] = {}
    for row in rows:
        by_prompt.setdefault(str(row["prompt_id"]), []).append(row["continuation"])
    if not by_prompt:
        return 0.0
    return sum(distinct_n(texts, n) for texts in by_prompt.values()) / len(by_prompt)


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


# --------------------------------------------------------------------------- report and guards

#: The metrics of one prompt set's block of a quality report.
QUALITY_METRICS = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "empty_share",
    "teacher_perplexity",
    "gender_polarity_male_share",
    "gender_polarity_female_share",
)


def promptset_quality(rows: Sequence[Mapping[str, Any]], perplexity: tuple[float, int]) -> dict:
    """The quality block of one prompt set's generations (see :func:`quality_report`)."""
    texts = [r["continuation"] for r in rows]
    ppl, n_tokens = perplexity
    return {
        **{f"distinct_{n}": distinct_n_per_prompt(rows, n) for n in (1, 2, 3)},
        "empty_share": empty_share(texts),
        "teacher_perplexity": None if math.isnan(ppl) else ppl,
        "n_continuations": len(texts),
        "n_scored_tokens": n_tokens,
        **gender_polarity(texts),
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
    """Every quality guard of one model's generations, per prompt set; write and return it.

    ``generations`` maps a prompt set to its generations file. Writes
    ``{"promptsets": {name: {"distinct_1", "distinct_2", "distinct_3",
    "empty_share", "teacher_perplexity", "n_continuations",
    "n_scored_tokens", "gender_polarity_male_share",
    "gender_polarity_female_share"}}}`` to ``out_json`` atomically;
    ``teacher_perplexity`` is null when no continuation is non-empty. It is
    computed on the first ``teacher_samples`` samples of every prompt (None:
    all): the teacher re-reads each prompt for every sample it scores, so
    this guard would otherwise cost about as much as generating; the same
    samples of the parent are scored, so the ratio stays paired. With
    ``teacher_prompts`` it is computed on at most that many prompts of each set
    (:func:`teacher_scored_rows`). The other guards use every sample.
    """
    # Imported here: the rest of this module serves jobs that never load a model.
    from compfair.perplexity import load_scorer_model, rows_perplexity

    teacher = load_scorer_model(teacher_dir)  # once for every prompt set
    blocks = {}
    for promptset, path in sorted(generations.items()):
        rows = read_generations(Path(path))
        scored = teacher_scored_rows(rows, teacher_samples, teacher_prompts)
        blocks[promptset] = promptset_quality(rows, rows_perplexity(*teacher, scored, batch_size))
        log.info(
            "%s: distinct-2 %.3f, empty %.3f, teacher perplexity %s over %d continuations",
            path,
            blocks[promptset]["distinct_2"],
            blocks[promptset]["empty_share"],
            blocks[promptset]["teacher_perplexity"],
            blocks[promptset]["n_continuations"],
        )
    report = {"promptsets": blocks}
    write_json(out_json, report)
    return report


#: Guards against the model's parent: threshold key -> (metric, how it compares).
RELATIVE_GUARDS = {
    "max_perplexity_ratio": ("perplexity", "ratio"),
    "max_teacher_perplexity_ratio": ("teacher_perplexity", "ratio"),
    "max_distinct_2_drop": ("distinct_2", "drop"),
}
#: Guards on the model's own values: threshold key -> metric.
ABSOLUTE_GUARDS = {
    "max_empty_share": "empty_share",
    "max_teacher_perplexity": "teacher_perplexity",
    "min_distinct_2": "distinct_2",
}


def _undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def degeneracy_reasons(
    values: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    parent: Mapping[str, Any] | None = None,
) -> list[str]:
    """The guards a model breaks, as readable strings (empty: not degenerate).

    ``values`` are the model's quality metrics (a prompt set's block, and/or
    ``perplexity``), ``parent`` the same of its parent (None: no parent, so
    only the absolute guards apply). ``thresholds`` holds the keys of
    :data:`RELATIVE_GUARDS` and :data:`ABSOLUTE_GUARDS`; None switches one
    off; a metric absent from ``values`` is not checked. A guarded value that
    is present but undefined (NaN, null) counts as broken: it cannot be
    checked. A ratio is ``value / parent``; a drop is ``1 - value / parent``.
    """
    unknown = sorted(set(thresholds) - set(RELATIVE_GUARDS) - set(ABSOLUTE_GUARDS))
    if unknown:
        raise InputError(f"quality_thresholds.{unknown[0]}: unknown guard")
    reasons = []
    for key, metric in ABSOLUTE_GUARDS.items():
        limit = thresholds.get(key)
        if limit is None or metric not in values:
            continue
        value = values[metric]
        if _undefined(value):
            reasons.append(f"{metric} is undefined")
        elif (value > limit) if key.startswith("max_") else (value < limit):
            reasons.append(
                f"{metric} {value:.4g} {'>' if key.startswith('max_') else '<'} {limit:g}"
            )
    for key, (metric, kind) in RELATIVE_GUARDS.items():
        limit = thresholds.get(key)
        if limit is None or parent is None or metric not in values or metric not in parent:
            continue
        value, base = values[metric], parent[metric]
        if _undefined(value) or _undefined(base) or base <= 0:
            reasons.append(f"{metric} relative to the parent is undefined")
        elif kind == "ratio" and value / base > limit:
            reasons.append(f"{metric} {value / base:.3g} x the parent's > {limit:g}")
        elif kind == "drop" and 1 - value / base > limit:
            reasons.append(f"{metric} {1 - value / base:.1%} below the parent's > {limit:.0%}")
    return reasons
