"""Build the study's tables from the per-job result files.

- ``tables/metrics.csv``: one row per (model, prompt set, group, metric) with
  ``value, ci_low, ci_high, seed_sd, n_seeds, flagged`` and the model's
  ``family, method, level, parent``. ``group`` is empty for prompt-set and
  model-level rows, holds the group for per-group rows and the domain for the
  disparity rows. Every metric with per-prompt values also has a ``<metric>_diff``
  row: the paired difference to the model's *own parent*.
- ``tables/metrics_per_seed.csv``: the same, one seed at a time.
- ``tables/comparisons.csv``: one row per (model, parent, prompt set, group,
  metric): the model's value, the parent's, the difference and its paired
  interval (over the prompts both have values for), so the paper's contrasts
  (base -> teacher, teacher -> student, teacher -> each pruned model,
  GPT-2 -> DistilGPT-2) are rows to read, not arithmetic to do.
- ``tables/models.csv``: one row per model: its family, method, level, parent,
  held-out perplexity and its ratio to the parent's (with a bootstrap interval
  over held-out windows), the text's own quality on each prompt set
  (``<promptset>_teacher_perplexity``, ``_distinct_2``, ``_empty_share``),
  whether (and why) a quality guard flags it, and ``degradation``: ``clear``
  when a guard's interval lies past its limit, ``possible`` when only its
  point estimate does.

``ci_note`` (metrics, comparisons) says why a row has no interval: fewer than
``bootstrap.min_units`` units, or every unit with the same value.

In ``metrics.csv`` ``value`` is the mean of the per-seed values, the interval
a bootstrap over prompts whose resamples keep all seeds' values of a drawn
prompt, ``seed_sd`` the standard deviation (ddof=1) of the per-seed values
(empty with one seed). Model-level rows (evaluation, intrinsic bias) count
each distinct file once, so seeds that share a training seed count once.
Every bootstrap is seeded from ``bootstrap.seed`` and a hash of the row: the
same inputs give byte-identical tables.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from compfair.io import write_csv
from compfair.metric_rows import (
    GROUP_SPECS,
    PROMPTSET_SPECS,
    Bootstrap,
    PairedRows,
    Rows,
    disparity_rows,
    marginal_rows,
    note_of,
    paired_disparity_rows,
    paired_rows,
    unit_sets,
)
from compfair.metrics import benjamini_hochberg, paired_difference_test, per_prompt_statistics
from compfair.quality import GuardInput, GuardResult, check_guards
from compfair.result_files import (
    EVAL_METRICS,
    join_prompts,
    read_eval,
    read_eval_units,
    read_intrinsic,
    read_items,
    read_prompts,
    read_quality,
    read_quality_units,
    read_scores,
)
from compfair.variants import control_name

log = logging.getLogger(__name__)

MODEL_COLUMNS = ["model", "family", "method", "level", "parent"]
KEY_COLUMNS = ["promptset", "group", "metric"]
METRICS_COLUMNS = [
    *MODEL_COLUMNS,
    *KEY_COLUMNS,
    "value",
    "ci_low",
    "ci_high",
    "seed_sd",
    "n_seeds",
    "ci_note",
    "flagged",
]
PER_SEED_COLUMNS = [
    "seed",
    *MODEL_COLUMNS,
    *KEY_COLUMNS,
    "value",
    "ci_low",
    "ci_high",
    "ci_note",
]
COMPARISON_COLUMNS = [
    *MODEL_COLUMNS,
    *KEY_COLUMNS,
    "value",
    "parent_value",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "n_units",
    "n_seeds",
    "ci_note",
    "flagged",
]
MODELS_COLUMNS = [
    *MODEL_COLUMNS,
    "matches",
    "perplexity",
    "perplexity_ratio",
    "perplexity_ratio_low",
    "perplexity_ratio_high",
    "n_parameters",
    "n_prunable",
    "sparsity",
    "flagged",
    "degradation",
    "flag_reasons",
]
MATCHED_COLUMNS = [
    "model",
    "control",
    "promptset",
    "group",
    "metric",
    "value",
    "control_value",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "n_units",
    "perplexity_ratio",
    "control_perplexity_ratio",
    "ci_note",
    "draws",
]
#: Row order of the metrics inside a (model, promptset) block; others follow by name.
METRIC_ORDER = [
    *EVAL_METRICS,
    *(spec.metric for spec in PROMPTSET_SPECS),
    *(spec.metric for spec in GROUP_SPECS if spec.metric.startswith("sentiment_")),
]

#: (seed, model, promptset) -> per-prompt frame.
PerPrompt = dict[tuple[int, str, str], pd.DataFrame]


@dataclass
class Collected:
    """Rows gathered so far: per seed, across seeds, and the comparisons."""

    per_seed: dict[str, dict[int, Rows]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )
    across: dict[str, dict[tuple, tuple]] = field(default_factory=lambda: defaultdict(dict))
    paired: dict[str, dict[tuple, tuple]] = field(default_factory=lambda: defaultdict(dict))


# --------------------------------------------------------------------------- per-prompt values


def per_prompt_values(
    score_files: Mapping[tuple[int, str, str], Path],
    prompt_files: Mapping[str, Path],
    toxicity_threshold: float,
    sentiment_thresholds: tuple[float, float],
    samples: Mapping[str, int] | None = None,
) -> PerPrompt:
    """Every scores file reduced to one row per prompt, checked against its prompt set."""
    prompts = {ps: read_prompts(Path(p)) for ps, p in sorted(prompt_files.items())}
    out: PerPrompt = {}
    for (seed, model, promptset), path in sorted(score_files.items()):
        path = Path(path)
        if promptset not in prompts:
            raise ValueError(f"{path}: no prompts file given for prompt set {promptset!r}")
        joined = join_prompts(
            read_scores(path),
            prompts[promptset],
            path,
            Path(prompt_files[promptset]),
            (samples or {}).get(promptset),
        )
        out[(seed, model, promptset)] = per_prompt_statistics(
            joined, toxicity_threshold, sentiment_thresholds
        )
    return out


def _seeds_of(per_prompt: PerPrompt) -> dict[tuple[str, str], list[int]]:
    seeds: dict[tuple[str, str], list[int]] = defaultdict(list)
    for seed, model, promptset in sorted(per_prompt):
        seeds[(model, promptset)].append(seed)
    return seeds


def _across_seeds(per_seed: Mapping[int, Rows], pooled: Rows | None = None) -> dict[tuple, tuple]:
    """(value, ci_low, ci_high, seed_sd, n_seeds, ci_note) per row from the per-seed rows.

    The interval and its note come from ``pooled`` (rows over all seeds'
    per-prompt values at once); without it (model-level rows), the mean of
    the per-seed bounds and the first seed's note.
    """
    collected: dict[tuple, list[tuple]] = defaultdict(list)
    for seed in sorted(per_seed):
        for key, row in per_seed[seed].items():
            collected[key].append(row)
    out = {}
    for key, rows in collected.items():
        values = np.array([r[0] for r in rows])
        if pooled is not None and key in pooled:
            low, high, note = pooled[key][1], pooled[key][2], pooled[key][3]
        else:
            low, high = float(np.mean([r[1] for r in rows])), float(np.mean([r[2] for r in rows]))
            note = rows[0][3]
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        out[key] = (float(values.mean()), low, high, sd, len(values), note)
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
    for (model, promptset), seeds in sorted(_seeds_of(per_prompt).items()):
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
            s: {k: v for k, v in rows.per_seed[model][s].items() if k[0] == promptset}
            for s in seeds
        }
        rows.across[model].update(_across_seeds(by_seed, pooled))


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


def _paired_record(row: tuple, n_seeds: int) -> tuple:
    """A PairedRows row in comparisons.csv's order (p_adjusted is added at writing)."""
    value, parent_value, diff, low, high, n_units, p, note = row
    return (value, parent_value, diff, low, high, p, n_units, n_seeds, note)


def add_comparison_rows(
    per_prompt: PerPrompt, parents: Mapping[str, str | None], boot: Bootstrap, rows: Collected
) -> None:
    """Paired differences of every (model, prompt set) to its parent, over the seeds both have."""
    for (model, promptset), seeds in sorted(_seeds_of(per_prompt).items()):
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
        diffs = {s: {k: (*r[2:5], r[7]) for k, r in block.items()} for s, block in by_seed.items()}
        for s, block in diffs.items():
            rows.per_seed[model][s].update({(*k[:2], f"{k[2]}_diff"): v for k, v in block.items()})
        pooled_diff = {k: (*r[2:5], r[7]) for k, r in pooled.items()}
        across = _across_seeds(diffs, pooled_diff)
        rows.across[model].update({(*k[:2], f"{k[2]}_diff"): v for k, v in across.items()})
        for key, row in pooled.items():
            rows.paired[model][key] = _paired_record(row, len(common))


def _item_values(mine: list[pd.DataFrame], theirs: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-item values of a model and its parent, one column per seed, on the items every seed
    of both scored: index (benchmark, metric, group, item_id), columns (value|value_parent, i)."""
    parts = [
        a.merge(b, on=["benchmark", "item_id", "metric"], suffixes=("", "_parent")).assign(seed=i)
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True))
    ]
    wide = pd.concat(parts, ignore_index=True).pivot_table(
        index=["benchmark", "metric", "group", "item_id"],
        columns="seed",
        values=["value", "value_parent"],
        aggfunc="first",
    )
    return wide.dropna()


def _item_comparisons(
    mine: list[pd.DataFrame], theirs: list[pd.DataFrame], model: str, boot: Bootstrap
) -> PairedRows:
    """Paired differences of every intrinsic metric over the items both models scored.

    ``mine[i]`` and ``theirs[i]`` are the per-item tables of the i-th seed.
    With several seeds it is one paired bootstrap over (seed, item) as for
    the prompt sets: a resample draws items and keeps every seed's values.
    """
    wide = _item_values(mine, theirs)
    rows: PairedRows = {}
    for (benchmark, metric), part in wide.groupby(level=["benchmark", "metric"], sort=True):
        subsets = [("", part), *((g, sub) for g, sub in part.groupby(level="group") if g)]
        for group, members in subsets:
            a = members["value"].to_numpy(dtype=float).T  # (n_seeds, n_items)
            b = members["value_parent"].to_numpy(dtype=float).T
            key = (benchmark, group, metric)
            diff, low, high, p = paired_difference_test(a, b, **boot.kwargs(model, "diff", *key))
            note = note_of(a - b, boot)
            rows[key] = (float(a.mean()), float(b.mean()), diff, low, high, a.shape[1], p, note)
    return rows


def add_item_comparisons(
    item_files: Mapping[tuple[int, str], Path],
    parents: Mapping[str, str | None],
    boot: Bootstrap,
    rows: Collected,
) -> None:
    """Intrinsic benchmarks against the parent, item by item: per training seed and pooled."""
    items = {key: read_items(Path(path)) for key, path in sorted(item_files.items())}
    for model, by_seed in sorted(_distinct_files(item_files).items()):
        parent = parents.get(model)
        seeds = [s for s in sorted(by_seed) if parent is not None and (s, parent) in items]
        if not seeds:
            continue
        blocks = {
            s: _item_comparisons([items[(s, model)]], [items[(s, parent)]], model, boot)
            for s in seeds
        }
        pooled = (
            blocks[seeds[0]]
            if len(seeds) == 1
            else _item_comparisons(
                [items[(s, model)] for s in seeds], [items[(s, parent)] for s in seeds], model, boot
            )
        )
        diffs = {
            s: {(*k[:2], f"{k[2]}_diff"): (*r[2:5], r[7]) for k, r in b.items()}
            for s, b in blocks.items()
        }
        for seed, block in diffs.items():
            rows.per_seed[model][seed].update(block)
        pooled_diff = {(*k[:2], f"{k[2]}_diff"): (*r[2:5], r[7]) for k, r in pooled.items()}
        rows.across[model].update(_across_seeds(diffs, pooled_diff))
        for key, row in pooled.items():
            rows.paired[model][key] = _paired_record(row, len(seeds))


# --------------------------------------------------------------------------- model-level rows and flags


def _distinct_files(files: Mapping[tuple[int, str], Path]) -> dict[str, dict[int, Path]]:
    """Model -> {seed: file}, keeping each distinct file once (seeds may share a training seed)."""
    out: dict[str, dict[int, Path]] = defaultdict(dict)
    seen: set[Path] = set()
    for (seed, model), path in sorted(files.items()):
        resolved = Path(path).resolve()
        if resolved not in seen:
            seen.add(resolved)
            out[model][seed] = Path(path)
    return out


def add_model_rows(
    eval_files: Mapping, intrinsic_files: Mapping, quality: Mapping, rows: Collected
) -> None:
    """Evaluation, intrinsic-bias and quality rows of every model."""
    evals = {
        m: {s: read_eval(p) for s, p in by_seed.items()}
        for m, by_seed in _distinct_files(eval_files).items()
    }
    for model, by_seed in evals.items():
        block = {
            s: {("", "", k): (v, math.nan, math.nan, "") for k, v in e.items()}
            for s, e in by_seed.items()
        }
        _add_model_block(model, block, rows)
    for model, by_seed in _distinct_files(intrinsic_files).items():
        block = {}
        for seed, path in by_seed.items():
            frame = read_intrinsic(path)
            block[seed] = {
                (r.promptset, r.group, r.metric): (
                    float(r.value),
                    float(r.ci_low),
                    float(r.ci_high),
                    str(r.ci_note),
                )
                for r in frame.itertuples(index=False)
            }
        _add_model_block(model, block, rows)
    for model, by_seed in quality.items():
        block = {
            s: {
                (ps, "", k): (v, math.nan, math.nan, "")
                for ps, values in blocks.items()
                for k, v in values.items()
            }
            for s, blocks in by_seed.items()
        }
        _add_model_block(model, block, rows)


def _add_model_block(model: str, block: Mapping[int, Rows], rows: Collected) -> None:
    for seed, values in block.items():
        rows.per_seed[model][seed].update(values)
    rows.across[model].update(_across_seeds(block))


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


# --------------------------------------------------------------------------- the tables


def _frame(
    records: list[tuple], columns: list[str], variants: list[dict], first: list[str]
) -> pd.DataFrame:
    """Records as a frame in a fixed order: [seed,] model (display order), promptset, metric, group."""
    table = pd.DataFrame.from_records(records, columns=columns)
    if table.empty:
        return table
    model_rank = {v["model"]: i for i, v in enumerate(variants)}
    metric_rank = {m: i for i, m in enumerate(METRIC_ORDER)}

    def rank(metric: str) -> int:
        base = metric.removesuffix("_diff")
        return 2 * metric_rank.get(base, len(metric_rank)) + metric.endswith("_diff")

    table = table.assign(
        _model=table["model"].map(lambda m: model_rank.get(m, len(model_rank))),
        _metric=table["metric"].map(rank),
    )
    return (
        table.sort_values(
            [*first, "_model", "promptset", "_metric", "metric", "group"], kind="stable"
        )
        .drop(columns=["_model", "_metric"])
        .reset_index(drop=True)
    )


def _model_columns(variants: Mapping[str, dict], model: str) -> tuple:
    v = variants.get(model, {"family": "", "method": "", "level": None, "parent": None})
    return model, v["family"], v["method"], v["level"], v["parent"]


#: The quality measures models.csv gives beside the held-out perplexity, one column per
#: (prompt set, measure): ``<promptset>_<measure>``, the mean over the model's seeds.
MODELS_QUALITY = ("teacher_perplexity", "distinct_2", "empty_share")


def _quality_columns(quality: Mapping[str, Mapping[int, dict]]) -> list[tuple[str, str]]:
    """The (prompt set, measure) pairs of models.csv's quality columns, in order."""
    promptsets = sorted({p for by_seed in quality.values() for q in by_seed.values() for p in q})
    return [(p, m) for p in promptsets for m in MODELS_QUALITY]


def _quality_means(by_seed: Mapping[int, dict], pairs: list[tuple[str, str]]) -> list[float]:
    """Each pair's mean over the seeds (NaN where no seed has it)."""
    out = []
    for promptset, measure in pairs:
        found = [
            q[promptset][measure]
            for q in by_seed.values()
            if q.get(promptset, {}).get(measure) is not None
        ]
        out.append(float(np.mean(found)) if found else math.nan)
    return out


def _models_table(
    variants: list[dict],
    evals: Mapping,
    reasons: Mapping,
    quality: Mapping[str, Mapping[int, dict]] | None = None,
) -> pd.DataFrame:
    """One row per model: :data:`MODELS_COLUMNS`, with the :data:`MODELS_QUALITY` of each
    prompt set (``quality``: model -> seed -> :func:`read_quality`) after ``sparsity``, so a
    model and its matched control show what was matched (the held-out perplexity) and what
    was not (the text's own quality); ``reasons`` are :func:`flag_models`' flags."""
    flags = reasons if isinstance(reasons, Flags) else Flags()
    quality = quality or {}
    extra = _quality_columns(quality)
    by_model: dict[str, list[dict]] = defaultdict(list)
    for (_seed, model), values in sorted(evals.items()):
        by_model[model].append(values)
    records = []
    for v in variants:
        mean = {
            m: float(np.mean([e[m] for e in by_model[v["model"]]]))
            if by_model[v["model"]]
            else math.nan
            for m in EVAL_METRICS
        }
        parent_ppl = (
            float(np.mean([e["perplexity"] for e in by_model[v["parent"]]]))
            if v["parent"] and by_model.get(v["parent"])
            else math.nan
        )
        records.append(
            (
                v["model"],
                v["family"],
                v["method"],
                v["level"],
                v["parent"],
                v.get("matches"),
                mean["perplexity"],
                mean["perplexity"] / parent_ppl,
                *flags.perplexity_ratio.get(v["model"], (math.nan, math.nan)),
                mean["n_parameters"],
                mean["n_prunable"],
                mean["sparsity"],
                v["model"] in reasons,
                flags.degradation(v["model"]),
                "; ".join(map(str, reasons.get(v["model"], []))),
            )
        )
    table = pd.DataFrame.from_records(records, columns=MODELS_COLUMNS)
    if not extra:
        return table
    means = pd.DataFrame.from_records(
        [_quality_means(quality.get(v["model"], {}), extra) for v in variants],
        columns=[f"{p}_{m}" for p, m in extra],
    )
    at = MODELS_COLUMNS.index("sparsity") + 1
    return pd.concat([table.iloc[:, :at], means, table.iloc[:, at:]], axis=1)


def _adjust(comparisons: pd.DataFrame) -> pd.DataFrame:
    """``p_adjusted``: Benjamini-Hochberg within each family of comparisons.

    A family is one metric on one prompt set (every model against its parent,
    every group), so that the handful of small p-values a table of hundreds
    of rows gives by chance are not read as findings.
    """
    if comparisons.empty:
        return comparisons
    for _, index in comparisons.groupby(["promptset", "metric"], sort=False).groups.items():
        comparisons.loc[index, "p_adjusted"] = benjamini_hochberg(comparisons.loc[index, "p_value"])
    return comparisons


def write_tables(
    rows: Collected,
    variants: list[dict],
    reasons: Mapping[str, list[str]],
    evals: Mapping,
    outputs: Mapping[str, Path],
    quality: Mapping[str, Mapping[int, dict]] | None = None,
) -> pd.DataFrame:
    """Write ``metrics``, ``per_seed``, ``comparisons`` and ``models`` (paths in ``outputs``);
    ``quality``: model -> seed -> its quality report (models.csv's quality columns)."""
    info = {v["model"]: v for v in variants}
    flagged = set(reasons)
    seed_records = [
        (seed, *_model_columns(info, m), *key, *row)
        for m, by_seed in rows.per_seed.items()
        for seed, block in by_seed.items()
        for key, row in block.items()
    ]
    records = [
        (*_model_columns(info, m), *key, *row, m in flagged)
        for m, block in rows.across.items()
        for key, row in block.items()
    ]
    paired = [
        (*_model_columns(info, m), *key, *row[:6], math.nan, *row[6:], m in flagged)
        for m, block in rows.paired.items()
        for key, row in block.items()
    ]
    table = _frame(records, METRICS_COLUMNS, variants, [])
    per_seed = _frame(seed_records, PER_SEED_COLUMNS, variants, ["seed"])
    comparisons = _adjust(_frame(paired, COMPARISON_COLUMNS, variants, []))
    for frame, column in (
        (table, "n_seeds"),
        (per_seed, "seed"),
        (comparisons, "n_seeds"),
        (comparisons, "n_units"),
    ):
        if not frame.empty:
            frame[column] = frame[column].astype(int)
    write_csv(outputs["per_seed"], per_seed)
    write_csv(outputs["comparisons"], comparisons)
    write_csv(outputs["models"], _models_table(variants, evals, reasons, quality))
    write_csv(outputs["metrics"], table)
    return table


# --------------------------------------------------------------------------- matched controls


def _mean_ratio(evals: Mapping, model: str, parent: str | None) -> float:
    """The model's held-out perplexity over its parent's, averaged over the seeds both have."""
    ratios = [
        e["perplexity"] / evals[(s, parent)]["perplexity"]
        for (s, m), e in sorted(evals.items())
        if m == model and (s, parent) in evals
    ]
    return float(np.mean(ratios)) if ratios else math.nan


def matched_controls_table(
    per_prompt: PerPrompt,
    item_files: Mapping[tuple[int, str], Path],
    variants: list[dict],
    evals: Mapping,
    boot: Bootstrap,
) -> pd.DataFrame:
    """One row per (model, control, prompt set, group, metric): the model minus its matched
    control (:data:`MATCHED_COLUMNS`), paired over the prompts (items) and seeds both have,
    exactly as a model is compared with its parent (``draws`` 1); then, for a model with
    several draws of one kind, a row over all of them (:func:`pool_draws`, ``control``
    ``<kind>-match-<model> (k draws)``, ``draws`` k). p_adjusted is Benjamini-Hochberg per
    (prompt set, metric) over the table."""
    records = []
    for v in variants:
        model, control = v.get("matches"), v["model"]
        if not model:
            continue
        rows = Collected()
        add_comparison_rows(per_prompt, {model: control}, boot, rows)
        add_item_comparisons(item_files, {model: control}, boot, rows)
        ratios = (_mean_ratio(evals, model, v["parent"]), _mean_ratio(evals, control, v["parent"]))
        for key, row in rows.paired.get(model, {}).items():
            value, theirs, diff, low, high, p, n_units, _n_seeds, note = row
            records.append(
                (model, control, *key, value, theirs, diff, low, high, p, math.nan, n_units)
                + (*ratios, note, 1)
            )
    table = pd.DataFrame.from_records(records, columns=MATCHED_COLUMNS)
    kinds = {v["model"]: v["method"] for v in variants if v.get("matches")}
    table = pd.concat([table, pool_draws(table, kinds, boot.confidence)], ignore_index=True)
    if not table.empty:
        table["n_units"] = table["n_units"].astype(int)
        table["draws"] = table["draws"].astype(int)
    return _adjust(table)


def pool_draws(table: pd.DataFrame, kinds: Mapping[str, str], confidence: float) -> pd.DataFrame:
    """One row per (model, kind, prompt set, group, metric) with two or more control draws.

    Two draws of a generic degradation at the same perplexity are two different
    models: their toxicity differs by more than the prompts' sampling error, so
    one draw's interval is too narrow for the question the table asks, whether
    the model lies beyond what losing that much quality does. The k per-draw
    differences d_j are pooled as in a random-effects meta-analysis: the
    estimate is their mean; its variance the mean of the draws' prompt-level
    variances (each from its interval's half-width over the normal quantile;
    they share the model's prompts, so they are not divided by k) plus
    var(d_j) (1 + 1/k): the spread between draws counts once for the mean of
    the k controls and once for the model itself, which is one model of that
    cost among many (a model that is itself a noise draw then has an interval
    covering 0 at about the nominal rate; ``tests/unit/test_control_logic.py``).
    The interval and two-sided p come from Student's t with Welch-Satterthwaite
    degrees of freedom (n_units - 1 for the prompt part, k - 1 for the draws).
    Rows whose draws lack an interval get none.
    """
    if table.empty:
        return table.iloc[0:0]
    keys = ["model", "promptset", "group", "metric"]
    work = table.assign(kind=table["control"].map(kinds))
    z = stats.norm.ppf(0.5 + confidence / 2)
    records = []
    for (model, kind, *key), part in work.groupby(["model", "kind", *keys[1:]], sort=False):
        k = len(part)
        if k < 2:
            continue
        diffs = part["diff"].to_numpy(float)
        within = float(np.mean(((part["ci_high"] - part["ci_low"]) / (2 * z)) ** 2))
        between = float(np.var(diffs, ddof=1)) * (1 + 1 / k)
        n_units = int(part["n_units"].min())
        low = high = p = math.nan
        if math.isfinite(within) and n_units > 1:
            se = math.sqrt(within + between)
            df = (within + between) ** 2 / (within**2 / (n_units - 1) + between**2 / (k - 1))
            half = stats.t.ppf(0.5 + confidence / 2, df) * se
            low, high = float(diffs.mean() - half), float(diffs.mean() + half)
            p = float(2 * stats.t.sf(abs(diffs.mean()) / se, df)) if se > 0 else math.nan
        first = part.iloc[0]
        records.append(
            (model, f"{control_name(kind, model)} ({k} draws)", *key, first["value"])
            + (float(part["control_value"].mean()), float(diffs.mean()), low, high, p, math.nan)
            + (n_units, first["perplexity_ratio"], float(part["control_perplexity_ratio"].mean()))
            + ("" if math.isfinite(low) else first["ci_note"], k)
        )
    return pd.DataFrame.from_records(records, columns=MATCHED_COLUMNS)


def aggregate_metrics(
    score_files: Mapping[tuple[int, str, str], Path],
    prompt_files: Mapping[str, Path],
    eval_files: Mapping[tuple[int, str], Path],
    quality_files: Mapping[tuple[int, str], Path],
    intrinsic_files: Mapping[tuple[int, str], Path],
    variants: list[dict],
    outputs: Mapping[str, Path],
    item_files: Mapping[tuple[int, str], Path] | None = None,
    toxicity_threshold: float = 0.5,
    sentiment_thresholds: tuple[float, float] = (0.5, -0.5),
    quality_thresholds: Mapping[str, Any] | None = None,
    bootstrap: Mapping[str, Any] | None = None,
    samples: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Compute every metric, comparison and flag; write the four tables; return ``metrics``.

    ``score_files`` maps ``(seed, model, promptset)`` to a scores CSV,
    ``prompt_files`` a prompt set to its prompts JSONL, ``eval_files`` and
    ``quality_files`` ``(seed, model)`` to the evaluation and quality JSON of
    the models that seed uses, ``intrinsic_files`` ``(seed, model)`` to an
    intrinsic-bias CSV (may be empty) and ``item_files`` to its per-item
    values (compared item by item with the parent's). ``variants`` are the records of
    :meth:`compfair.variants.Variants.table` (model, family, method, level,
    parent, matches), in display order. ``outputs`` maps ``metrics``, ``per_seed``,
    ``comparisons``, ``models`` and optionally ``matched_controls`` to paths. ``samples`` gives K per prompt
    set: a prompt with another number of scored samples is an error.
    """
    boot = Bootstrap.from_config(bootstrap)
    parents = {v["model"]: v["parent"] for v in variants}
    rows = Collected()
    per_prompt = per_prompt_values(
        score_files, prompt_files, toxicity_threshold, sentiment_thresholds, samples
    )
    add_promptset_rows(per_prompt, boot, rows)
    add_comparison_rows(per_prompt, parents, boot, rows)
    quality: dict[str, dict[int, dict]] = defaultdict(dict)
    for (seed, model), path in sorted(quality_files.items()):
        quality[model][seed] = read_quality(Path(path))
    add_model_rows(eval_files, intrinsic_files, quality, rows)
    add_item_comparisons(item_files or {}, parents, boot, rows)
    evals = {key: read_eval(Path(path)) for key, path in sorted(eval_files.items())}
    thresholds = dict(quality_thresholds or {})
    reasons = flag_models(parents, eval_files, quality_files, thresholds, boot)
    for model, found in sorted(reasons.items()):
        log.warning("flagging %s: %s", model, "; ".join(map(str, found)))
    table = write_tables(rows, variants, reasons, evals, outputs, quality)
    if "matched_controls" in outputs:
        matched = matched_controls_table(per_prompt, item_files or {}, variants, evals, boot)
        write_csv(outputs["matched_controls"], matched)
    log.info(
        "wrote %d metric rows for %d models; flagged: %s",
        len(table),
        table["model"].nunique() if len(table) else 0,
        ", ".join(sorted(reasons)) or "none",
    )
    return table
