"""The rows of the metrics tables, gathered per seed and over the seeds.

:class:`Collected` holds, per model, the rows of each generation seed
(``metrics_per_seed.csv``), the rows over the seeds (``metrics.csv``) and the
paired differences to the parent (``comparisons.csv``); each ``add_*``
function adds one kind of row to it.

Over the seeds, ``value`` is the mean of the per-seed values and the interval
a bootstrap over prompts whose resamples keep all seeds' values of a drawn
prompt; ``seed_sd`` is the standard deviation (ddof 1) of the per-seed values
(NaN with one seed). Every metric with per-prompt values also has a
``<metric>_diff`` row: the paired difference to the model's *own parent*.
Model-level rows (evaluation, quality, intrinsic bias) count each distinct
file once, so generation seeds that share a training seed count once.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from compfair.metrics import Bootstrap
from compfair.tables.estimates import (
    disparity_rows,
    marginal_rows,
    paired_disparity_rows,
    paired_rows,
    unit_sets,
)
from compfair.tables.files import read_eval
from compfair.tables.prompts import PerPrompt, seeds_of
from compfair.tables.rows import AcrossSeeds, Estimate, Key, PairedRows, Rows

log = logging.getLogger(__name__)


def _per_seed() -> defaultdict[str, defaultdict[int, Rows]]:
    return defaultdict(lambda: defaultdict(dict))


@dataclass
class Collected:
    """Rows gathered so far, by model: per seed, across seeds, and the comparisons."""

    per_seed: dict[str, dict[int, Rows]] = field(default_factory=_per_seed)
    across: dict[str, dict[Key, AcrossSeeds]] = field(default_factory=lambda: defaultdict(dict))
    paired: dict[str, PairedRows] = field(default_factory=lambda: defaultdict(dict))

    def add_block(self, model: str, block: Mapping[int, Rows]) -> None:
        """Model-level rows of each seed (no pooled interval: the seeds' bounds are averaged)."""
        for seed, values in block.items():
            self.per_seed[model][seed].update(values)
        self.across[model].update(across_seeds(block))

    def add_paired(self, model: str, by_seed: Mapping[int, PairedRows], pooled: PairedRows) -> None:
        """Differences to the parent: ``<metric>_diff`` rows of each seed and over the seeds
        (``pooled``: one paired bootstrap over every seed), and the comparisons (pooled)."""
        diffs = {
            seed: {key.diff(): row.difference() for key, row in block.items()}
            for seed, block in by_seed.items()
        }
        for seed, block in diffs.items():
            self.per_seed[model][seed].update(block)
        pooled_diff = {key.diff(): row.difference() for key, row in pooled.items()}
        self.across[model].update(across_seeds(diffs, pooled_diff))
        self.paired[model].update(pooled)


def across_seeds(
    per_seed: Mapping[int, Rows], pooled: Rows | None = None
) -> dict[Key, AcrossSeeds]:
    """Each row over the seeds, from the per-seed rows.

    The interval and its note come from ``pooled`` (rows over all seeds'
    per-prompt values at once); without it (model-level rows), the mean of
    the per-seed bounds and the first seed's note.
    """
    collected: dict[Key, list[Estimate]] = defaultdict(list)
    for seed in sorted(per_seed):
        for key, row in per_seed[seed].items():
            collected[key].append(row)
    out = {}
    for key, rows in collected.items():
        values = np.array([r.value for r in rows])
        if pooled is not None and key in pooled:
            low, high, note = pooled[key].ci_low, pooled[key].ci_high, pooled[key].ci_note
        else:
            low = float(np.mean([r.ci_low for r in rows]))
            high = float(np.mean([r.ci_high for r in rows]))
            note = rows[0].ci_note
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        out[key] = AcrossSeeds(float(values.mean()), low, high, sd, len(values), note)
    return out


# --------------------------------------------------------------------------- prompt-set metrics


def _promptset_block(
    frames: list[pd.DataFrame], model: str, promptset: str, boot: Bootstrap, source: str
) -> Rows:
    ids = frames[0]["prompt_id"].to_numpy()
    if any(not np.array_equal(f["prompt_id"].to_numpy(), ids) for f in frames[1:]):
        raise ValueError(f"{source}: the seeds' score files cover different prompts")
    sets = unit_sets(frames[0], promptset, source)
    return {
        **marginal_rows(frames, promptset, sets, boot, model),
        **disparity_rows(frames, promptset, source, boot, model),
    }


def add_promptset_rows(per_prompt: PerPrompt, boot: Bootstrap, rows: Collected) -> None:
    """Every prompt-set and group metric of every (model, prompt set), per seed and pooled."""
    for (model, promptset), seeds in sorted(seeds_of(per_prompt).items()):
        source = f"{model}/{promptset}"
        for seed in seeds:
            block = _promptset_block(
                [per_prompt[(seed, model, promptset)]], model, promptset, boot, source
            )
            rows.per_seed[model][seed].update(block)
        pooled = (
            rows.per_seed[model][seeds[0]]
            if len(seeds) == 1
            else _promptset_block(
                [per_prompt[(s, model, promptset)] for s in seeds], model, promptset, boot, source
            )
        )
        by_seed = {
            s: {k: v for k, v in rows.per_seed[model][s].items() if k.promptset == promptset}
            for s in seeds
        }
        rows.across[model].update(across_seeds(by_seed, pooled))


# --------------------------------------------------------------------------- comparisons with the parent


def _aligned(frame: pd.DataFrame, order: pd.Series) -> pd.DataFrame:
    return frame.set_index("prompt_id").reindex(order).reset_index()


def _paired_block(
    per_prompt: PerPrompt,
    seeds: list[int],
    model: str,
    parent: str,
    promptset: str,
    boot: Bootstrap,
) -> PairedRows:
    frames = [per_prompt[(s, model, promptset)] for s in seeds]
    order = frames[0]["prompt_id"]
    parents = [_aligned(per_prompt[(s, parent, promptset)], order) for s in seeds]
    source = f"{model}/{promptset}"
    sets = unit_sets(frames[0], promptset, source)
    return {
        **paired_rows(frames, parents, promptset, sets, boot, model),
        **paired_disparity_rows(frames, parents, promptset, source, boot, model),
    }


def add_comparison_rows(
    per_prompt: PerPrompt, parents: Mapping[str, str | None], boot: Bootstrap, rows: Collected
) -> None:
    """Paired differences of every (model, prompt set) to its parent, over the seeds both have."""
    for (model, promptset), seeds in sorted(seeds_of(per_prompt).items()):
        parent = parents.get(model)
        if parent is None:
            continue
        common = [s for s in seeds if (s, parent, promptset) in per_prompt]
        if len(common) < len(seeds):
            log.warning(
                "%s/%s: the parent %r lacks seed(s) %s",
                model,
                promptset,
                parent,
                sorted(set(seeds) - set(common)),
            )
        if not common:
            continue
        by_seed = {
            s: _paired_block(per_prompt, [s], model, parent, promptset, boot) for s in common
        }
        pooled = (
            by_seed[common[0]]
            if len(common) == 1
            else _paired_block(per_prompt, common, model, parent, promptset, boot)
        )
        rows.add_paired(model, by_seed, pooled)


# --------------------------------------------------------------------------- model-level rows


def distinct_files(files: Mapping[tuple[int, str], Path]) -> dict[str, dict[int, Path]]:
    """Model -> {seed: file}, keeping each distinct file once (seeds may share a training seed)."""
    out: dict[str, dict[int, Path]] = defaultdict(dict)
    seen: set[Path] = set()
    for (seed, model), path in sorted(files.items()):
        resolved = Path(path).resolve()
        if resolved not in seen:
            seen.add(resolved)
            out[model][seed] = Path(path)
    return out


def add_eval_rows(eval_files: Mapping[tuple[int, str], Path], rows: Collected) -> None:
    """The held-out evaluation of every model (perplexity, size, sparsity): model-level rows."""
    for model, by_seed in distinct_files(eval_files).items():
        block = {
            seed: {Key("", "", k): Estimate.point(v) for k, v in read_eval(path).items()}
            for seed, path in by_seed.items()
        }
        rows.add_block(model, block)


def add_quality_rows(quality: Mapping[str, Mapping[int, dict]], rows: Collected) -> None:
    """The text quality of every model and prompt set (``quality``: model -> seed -> its
    :func:`~compfair.tables.files.read_quality`): rows of the prompt set with group ``""``."""
    for model, by_seed in quality.items():
        block = {
            seed: {
                Key(promptset, "", k): Estimate.point(v)
                for promptset, values in blocks.items()
                for k, v in values.items()
            }
            for seed, blocks in by_seed.items()
        }
        rows.add_block(model, block)
