"""Quality guards: is a model's text still language, or has compression broken it?

A heavily pruned model can look "non-toxic" simply because it emits empty
strings, one token repeated, or word salad. These guards catch that, per
(seed, model, prompt set):

- ``distinct_n`` (Li et al. 2016): unique n-grams / all n-grams over the
  continuations (lower-cased whitespace tokens); repetition drives it down;
- ``empty_share``: share of empty or whitespace-only continuations;
- ``teacher_perplexity``: perplexity of the continuations under the teacher,
  conditioned on their prompts (:mod:`compfair.perplexity`); word salad drives it up;
- gender polarity (Dhamala et al. 2021, simplified to word counts): shares of
  continuations with more male than female words and vice versa.

:func:`quality_report` writes them to ``quality/seed-{seed}/{model}/{promptset}.json``;
:func:`is_degenerate` applies the configured thresholds.
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


# --------------------------------------------------------------------------- generations


def read_generations(path: Path) -> list[dict[str, Any]]:
    """Rows of a generations file; each needs string ``prompt`` and ``continuation``."""
    rows = read_jsonl(path, required=("prompt", "continuation"))
    if not rows:
        raise InputError(f"{path}: no generations")
    for i, row in enumerate(rows, start=1):
        if not isinstance(row["prompt"], str) or not isinstance(row["continuation"], str):
            raise InputError(f"{path}, row {i}: 'prompt' and 'continuation' must be strings")
    return rows


# --------------------------------------------------------------------------- report and guard


def quality_report(
    generations_path: PathLike, teacher_dir: PathLike, out_json: PathLike, batch_size: int = 8
) -> dict[str, Any]:
    """Compute every quality guard of one generations file; write and return it.

    Writes ``{"distinct_1", "distinct_2", "distinct_3", "empty_share",
    "teacher_perplexity", "n_continuations", "n_scored_tokens",
    "gender_polarity_male_share", "gender_polarity_female_share"}`` to
    ``out_json`` atomically; ``teacher_perplexity`` is null when no
    continuation is non-empty.
    """
    # Imported here: the rest of this module serves jobs that never load a model.
    from compfair.perplexity import perplexity_of_rows

    rows = read_generations(Path(generations_path))
    texts = [r["continuation"] for r in rows]
    ppl, n_tokens = perplexity_of_rows(teacher_dir, rows, batch_size)
    report: dict[str, Any] = {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "empty_share": empty_share(texts),
        "teacher_perplexity": None if math.isnan(ppl) else ppl,
        "n_continuations": len(texts),
        "n_scored_tokens": n_tokens,
        **gender_polarity(texts),
    }
    log.info(
        "%s: distinct-2 %.3f, empty %.3f, teacher perplexity %s over %d continuations",
        generations_path,
        report["distinct_2"],
        report["empty_share"],
        f"{ppl:.2f}",
        len(texts),
    )
    write_json(out_json, report)
    return report


def degeneracy_reasons(report: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[str]:
    """The thresholds a quality report breaks, as readable strings (empty: not degenerate).

    ``thresholds`` keys are ``max_<metric>`` or ``min_<metric>`` for a metric of
    the report (``max_teacher_perplexity``, ``min_distinct_2``,
    ``max_empty_share``); a value of None switches that guard off. A missing
    or NaN value of a guarded metric counts as broken: it cannot be checked.
    """
    reasons = []
    for key in sorted(thresholds):
        limit = thresholds[key]
        if limit is None:
            continue
        kind, _, metric = key.partition("_")
        if kind not in ("max", "min") or not metric:
            raise InputError(
                f"quality threshold {key!r}: expected max_<metric> or min_<metric>"
            )
        if metric not in report:
            raise InputError(
                f"quality threshold {key!r}: the quality report has no {metric!r} "
                f"(it has {', '.join(sorted(report))})"
            )
        value = report[metric]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            reasons.append(f"{metric} is undefined")
        elif kind == "max" and value > limit:
            reasons.append(f"{metric} {value:.4g} > {limit:g}")
        elif kind == "min" and value < limit:
            reasons.append(f"{metric} {value:.4g} < {limit:g}")
    return reasons


def is_degenerate(report: Mapping[str, Any], thresholds: Mapping[str, Any]) -> bool:
    """True when ``report`` breaks any of the ``thresholds`` (see :func:`degeneracy_reasons`)."""
    return bool(degeneracy_reasons(report, thresholds))
