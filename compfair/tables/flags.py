"""The quality guards of every model against its parent: models.csv's flags.

A model is flagged when it breaks a guard of ``quality_thresholds`` in any
seed or prompt set (:func:`compfair.quality.check_guards`): its held-out
perplexity, or its text's quality, against its parent's. Every guard's
statistic has a bootstrap interval (over held-out windows, or over prompts),
so a breach is *clear* when the whole interval lies past the limit and
*possible* when only the point estimate does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from compfair.metrics import Bootstrap
from compfair.quality import GuardInput, GuardResult, check_guards
from compfair.tables.files import read_eval, read_eval_units, read_quality, read_quality_units


@dataclass(frozen=True)
class Breach:
    """A quality guard a model breaks: where (a prompt set; "" for held-out text) and how."""

    where: str
    result: GuardResult

    @property
    def clear(self) -> bool:
        """The whole interval is past the limit (else only the point estimate, or undefined)."""
        return self.result.clear

    def __str__(self) -> str:
        return f"{self.where}: {self.result.describe()}" if self.where else self.result.describe()


class Flags(dict[str, list[Breach]]):
    """Flagged model -> the guards it breaks (in any seed or prompt set), each once.

    ``perplexity_ratio`` maps every model with a parent to its held-out
    perplexity ratio's interval ``(low, high)`` (means over its distinct
    evaluation files; NaN: none).
    """

    def __init__(self) -> None:
        super().__init__()
        self.perplexity_ratio: dict[str, tuple[float, float]] = {}

    def note(self, model: str, where: str, results: list[GuardResult]) -> None:
        for result in results:
            breach = Breach(where, result)
            if result.broken and str(breach) not in map(str, self.get(model, [])):
                self.setdefault(model, []).append(breach)

    def degradation(self, model: str) -> str:
        """``"clear"`` when a breach of the model is clear, ``"possible"`` when it has only
        others, ``""`` when it breaks no guard."""
        breaches = self.get(model, [])
        return "clear" if any(b.clear for b in breaches) else "possible" if breaches else ""


def _heldout_inputs(eval_files: Mapping[tuple[int, str], Path]) -> dict[tuple[int, str], tuple]:
    """(seed, model) -> (resolved path, its held-out perplexity as a GuardInput)."""
    out = {}
    for key, path in sorted(eval_files.items()):
        units = read_eval_units(Path(path))
        values = {"perplexity": read_eval(Path(path))["perplexity"]}
        guarded = GuardInput(values, {} if units is None else {"perplexity": units})
        out[key] = (Path(path).resolve(), guarded)
    return out


def _flag_heldout(
    parents: Mapping[str, str | None],
    eval_files: Mapping[tuple[int, str], Path],
    thresholds: Mapping[str, Any],
    boot: Bootstrap,
    flags: Flags,
) -> None:
    """The held-out perplexity guard, once per distinct pair of evaluation files; its ratio's
    interval (reported whether or not the guard is on) goes to ``flags.perplexity_ratio``."""
    inputs = _heldout_inputs(eval_files)
    limit = thresholds.get("max_perplexity_ratio")
    always = {**thresholds, "max_perplexity_ratio": math.inf if limit is None else limit}
    intervals: dict[str, dict[tuple, tuple[float, float]]] = defaultdict(dict)
    for (seed, model), (path, mine) in inputs.items():
        parent = parents.get(model)
        if not parent or (seed, parent) not in inputs:
            continue
        parent_path, theirs = inputs[(seed, parent)]
        if (path, parent_path) in intervals[model]:
            continue  # generation seeds that share a training seed share their evaluation
        row = "/".join(path.parts[-2:])  # e.g. seed-7/magnitude-0.50.json
        results = check_guards(always, mine, theirs, partial(boot.kwargs, model, "guard", row))
        ratio = next(r for r in results if r.key == "max_perplexity_ratio")
        intervals[model][(path, parent_path)] = (ratio.low, ratio.high)
        flags.note(model, "", results)
    for model, pairs in intervals.items():
        lows, highs = zip(*pairs.values(), strict=True)
        flags.perplexity_ratio[model] = (float(np.mean(lows)), float(np.mean(highs)))


def _quality_inputs(path: Path) -> dict[str, GuardInput]:
    """Prompt set -> the quality values of one quality file and their per-prompt units."""
    units = read_quality_units(path)
    return {ps: GuardInput(values, units.get(ps, {})) for ps, values in read_quality(path).items()}


def flag_models(
    parents: Mapping[str, str | None],
    eval_files: Mapping[tuple[int, str], Path],
    quality_files: Mapping[tuple[int, str], Path],
    thresholds: Mapping[str, Any],
    boot: Bootstrap,
) -> Flags:
    """Every model's breaches of the quality guards (in any seed or prompt set), against its parent.

    Held-out perplexity is checked once per distinct evaluation file, with an
    interval over its windows; the text guards once per (seed, prompt set),
    with intervals over prompts (paired with the parent's for the relative
    guards; :func:`compfair.quality.check_guards`). Every interval is seeded
    from ``boot`` and its row, so the same files give the same flags.
    """
    flags = Flags()
    _flag_heldout(parents, eval_files, thresholds, boot, flags)
    inputs = {key: _quality_inputs(Path(path)) for key, path in sorted(quality_files.items())}
    for (seed, model), blocks in inputs.items():
        parent = parents.get(model)
        parent_blocks = inputs.get((seed, parent), {}) if parent else {}
        for promptset, mine in sorted(blocks.items()):
            theirs = parent_blocks.get(promptset) if parent else None
            seeded = partial(boot.kwargs, model, "guard", str(seed), promptset)
            results = check_guards(thresholds, mine, theirs, seeded)
            flags.note(model, promptset, results)
    return flags
