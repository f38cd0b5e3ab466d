"""Build ``tables/metrics_per_seed.csv`` and ``tables/metrics.csv``.

One row per (model, promptset, group, metric). ``group`` is empty for
prompt-set level rows and model-level rows, holds the group name for per-group
BOLD rows and the domain (axis) name for the disparity rows
(``sentiment_gap`` ...).

Prompts are the sampling unit. For every (seed, model, prompt set) the scores
are reduced to per-prompt values (:func:`compfair.metrics.per_prompt_statistics`)
and every metric is a statistic over prompts. ``metrics_per_seed.csv`` holds
each seed's value and its bootstrap interval over prompts. In ``metrics.csv``
``value`` is the mean of the per-seed values and ``ci_low``/``ci_high`` a
bootstrap interval over prompts whose resamples keep all seeds' values of a
drawn prompt (for the means over prompts this is the same as resampling the
seed-averaged per-prompt values; for a std or a gap it keeps the interval about
the reported mean over seeds), ``seed_sd`` the standard deviation (ddof=1)
of the per-seed values (empty with one seed), ``n_seeds`` the number of
seeds, and ``flagged`` is true on every row of a model whose continuations
failed a quality guard in any seed or prompt set. Model-level rows
(evaluation, intrinsic bias) count each distinct file once, so seeds that
share a training seed are not counted twice.

Every bootstrap is seeded from ``bootstrap["seed"]`` and a hash of (model,
promptset, group, metric): the same inputs give byte-identical tables.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compfair.io import InputError, read_json, read_jsonl, write_csv
from compfair.metrics import (
    bootstrap_ci,
    group_disparity_ci,
    paired_difference_ci,
    per_prompt_statistics,
)
from compfair.quality import degeneracy_reasons

log = logging.getLogger(__name__)

#: The identifying columns and the value: what every metrics table starts with.
COLUMNS = ["model", "compression", "level", "promptset", "group", "metric", "value"]
#: ``tables/metrics.csv``.
METRICS_COLUMNS = [*COLUMNS, "ci_low", "ci_high", "seed_sd", "n_seeds", "flagged"]
#: ``tables/metrics_per_seed.csv``.
PER_SEED_COLUMNS = ["seed", *COLUMNS, "ci_low", "ci_high"]

EVAL_METRICS = ("perplexity", "n_parameters", "sparsity")
QUALITY_METRICS = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "empty_share",
    "teacher_perplexity",
    "gender_polarity_male_share",
    "gender_polarity_female_share",
)
#: Quality keys a report may lack (older reports): their rows are then left out.
_OPTIONAL_QUALITY = ("gender_polarity_male_share", "gender_polarity_female_share")
INTRINSIC_COLUMNS = ("promptset", "group", "metric", "value", "ci_low", "ci_high")

#: Prompt-set level metrics: (metric, per-prompt column, statistic over prompts).
PROMPTSET_METRICS: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("expected_max_toxicity", "max_toxicity", np.mean),
    ("expected_max_toxicity_std", "max_toxicity", np.std),  # ddof=0, as RealToxicityPrompts
    ("toxicity_probability", "toxic", np.mean),
    ("mean_toxicity", "mean_toxicity", np.mean),
)
#: Per-group metrics (means over the group's prompts): (metric, per-prompt column).
GROUP_METRICS = (
    ("sentiment_mean", "sentiment_mean"),
    ("sentiment_positive_share", "sentiment_positive_share"),
    ("sentiment_negative_share", "sentiment_negative_share"),
    ("mean_toxicity", "mean_toxicity"),
    ("expected_max_toxicity", "max_toxicity"),
    # Only when a regard classifier is configured (scoring.regard_model).
    ("regard_positive", "regard_positive"),
    ("regard_negative", "regard_negative"),
)
#: Per-domain disparities: (metric, per-prompt column, disparity kind).
DISPARITY_METRICS = (
    ("sentiment_gap", "sentiment_mean", "gap"),
    ("sentiment_group_sd", "sentiment_mean", "sd"),
    ("toxicity_gap", "mean_toxicity", "gap"),
    ("toxicity_group_sd", "mean_toxicity", "sd"),
    ("regard_negative_gap", "regard_negative", "gap"),
)
#: Paired differences to the reference model: (metric, per-prompt column).
DIFF_METRICS = (
    ("expected_max_toxicity_diff", "max_toxicity"),
    ("toxicity_probability_diff", "toxic"),
    ("mean_toxicity_diff", "mean_toxicity"),
)

#: Row order of the metrics inside a (model, promptset) block; others follow by name.
METRIC_ORDER = [
    *EVAL_METRICS,
    *(m for m, _, _ in PROMPTSET_METRICS),
    *(m for m, _ in DIFF_METRICS),
    "sentiment_mean",
    "sentiment_positive_share",
    "sentiment_negative_share",
    *(m for m, _, _ in DISPARITY_METRICS),
    *QUALITY_METRICS,
]

_PRUNED = re.compile(r"^pruned-(\d+(?:\.\d+)?)$")

# A metric row before the model columns are added: (promptset, group, metric) -> (value, lo, hi).
Rows = dict[tuple[str, str, str], tuple[float, float, float]]


def model_compression(model_id: str) -> tuple[str, float | None]:
    """Map a model id to ``(compression, level)`` by its name (the fallback for ``model_info``).

    ``teacher`` -> ``("none", None)``; ``student*`` -> ``("distillation", None)``;
    ``pruned-0.30`` -> ``("pruning", 0.30)``; anything else (``base``, a hub
    model) -> ``("none", None)``.
    """
    match = _PRUNED.match(model_id)
    if match:
        return "pruning", float(match.group(1))
    if model_id.startswith("student"):
        return "distillation", None
    return "none", None


def model_sort_key(
    model_id: str, info: tuple[str, float | None] | None = None
) -> tuple[int, float, str]:
    """Order models as teacher, student(s), pruned by level, then the others by name."""
    compression, level = info if info is not None else model_compression(model_id)
    if model_id == "teacher":
        return (0, 0.0, model_id)
    if compression == "distillation":
        return (1, 0.0, model_id)
    if compression == "pruning":
        return (2, float(level) if level is not None else 0.0, model_id)
    return (3, 0.0, model_id)


# --------------------------------------------------------------------------- reading


def _read_prompts(path: Path) -> pd.DataFrame:
    rows = read_jsonl(path, required=("prompt_id",))
    frame = pd.DataFrame(
        {
            "prompt_id": [str(r["prompt_id"]) for r in rows],
            "domain": [r.get("domain") for r in rows],
            "group": [r.get("group") for r in rows],
        }
    )
    dup = frame["prompt_id"][frame["prompt_id"].duplicated()]
    if len(dup):
        raise InputError(f"{path}: duplicate prompt_id {dup.iloc[0]!r}")
    if frame.empty:
        raise InputError(f"{path}: no prompts")
    return frame


def _read_scores(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"prompt_id": str}, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    missing = [c for c in ("prompt_id", "sample", "toxicity", "sentiment") if c not in frame]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for col in ("toxicity", "sentiment", *(c for c in frame.columns if c.startswith("regard_"))):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
            raise InputError(f"{path}, line {line}: {col} is missing or not a number")
        frame[col] = values.astype(float)
    if frame.empty:
        raise InputError(f"{path}: no score rows")
    return frame


def _join(
    scores: pd.DataFrame, prompts: pd.DataFrame, score_path: Path, prompt_path: Path
) -> pd.DataFrame:
    unknown = sorted(set(scores["prompt_id"]) - set(prompts["prompt_id"]))
    if unknown:
        raise InputError(
            f"{score_path}: {len(unknown)} prompt_id(s) not in {prompt_path}, e.g. {unknown[0]!r}"
        )
    absent = sorted(set(prompts["prompt_id"]) - set(scores["prompt_id"]))
    if absent:
        raise InputError(
            f"{score_path}: no scores for {len(absent)} prompt(s) of {prompt_path}, "
            f"e.g. {absent[0]!r}"
        )
    counts = scores.groupby("prompt_id").size()
    if counts.nunique() > 1:
        log.warning(
            "%s: prompts have unequal sample counts (%d to %d)",
            score_path,
            counts.min(),
            counts.max(),
        )
    return scores.merge(prompts, on="prompt_id", how="left", validate="many_to_one")


def _read_object(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def _number(value: Any, path: Path, key: str, allow_null: bool = False) -> float:
    if value is None and allow_null:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{path}: {key!r} must be a number, got {value!r}")
    return float(value)


def _read_intrinsic(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    missing = [c for c in INTRINSIC_COLUMNS if c not in frame]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for col in ("value", "ci_low", "ci_high"):
        values = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce")
        bad = values.isna() & frame[col].ne("") if col != "value" else values.isna()
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise InputError(f"{path}, line {line}: {col} is missing or not a number")
        frame[col] = values.astype(float)
    dup = frame.duplicated(["promptset", "group", "metric"])
    if dup.any():
        line = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise InputError(f"{path}, line {line}: repeats a (promptset, group, metric)")
    return frame[list(INTRINSIC_COLUMNS)]


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class _Bootstrap:
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    method: str = "percentile"

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> _Bootstrap:
        config = dict(config or {})
        unknown = sorted(set(config) - {"n_resamples", "confidence", "seed", "method"})
        if unknown:
            raise InputError(f"bootstrap.{unknown[0]}: unknown key")
        boot = cls(**config)
        if int(boot.n_resamples) < 1:
            raise InputError(f"bootstrap.n_resamples: must be >= 1, got {boot.n_resamples}")
        if not 0.0 < float(boot.confidence) < 1.0:
            raise InputError(f"bootstrap.confidence: must be in (0, 1), got {boot.confidence}")
        if boot.method not in ("percentile", "BCa"):
            raise InputError(f"bootstrap.method: {boot.method!r} is not 'percentile' or 'BCa'")
        return boot

    def kwargs(self, *key: str) -> dict[str, Any]:
        """Arguments of one bootstrap call; its seed depends on the row it computes."""
        digest = hashlib.sha256("\x1f".join([str(self.seed), *key]).encode()).hexdigest()
        return {
            "n_resamples": int(self.n_resamples),
            "confidence": float(self.confidence),
            "seed": int(digest[:15], 16),
            "method": self.method,
        }


def _stack(frames: list[pd.DataFrame], column: str) -> np.ndarray:
    """Per-prompt values of several seeds as (n_seeds, n_prompts), prompts in the same order."""
    return np.stack([f[column].to_numpy(dtype=float) for f in frames])


def _seed_mean(statistic: Callable[..., Any], values: np.ndarray) -> float:
    """The statistic of each seed's row, averaged over seeds."""
    return float(np.mean([statistic(row) for row in values]))


def _promptset_rows(
    frames: list[pd.DataFrame], model: str, promptset: str, boot: _Bootstrap, source: str
) -> Rows:
    """Every metric of one (model, prompt set) from the per-prompt values of one or more seeds.

    With several seeds, a value is the mean over seeds of the per-seed value
    and the interval resamples prompts keeping all seeds' values of a prompt.
    """
    first = frames[0]
    ids = first["prompt_id"].to_numpy()
    for frame in frames[1:]:
        if not np.array_equal(frame["prompt_id"].to_numpy(), ids):
            raise InputError(f"{source}: the seeds' score files cover different prompts")
    rows: Rows = {}
    for metric, column, statistic in PROMPTSET_METRICS:
        values = _stack(frames, column)
        low, high = bootstrap_ci(values, statistic, **boot.kwargs(model, promptset, "", metric))
        rows[(promptset, "", metric)] = (_seed_mean(statistic, values), low, high)

    has_group = first["group"].notna().to_numpy()
    if not has_group.any():
        return rows
    if not has_group.all():
        log.warning(
            "%s: %d prompt(s) without a group are left out of the group metrics",
            source,
            int((~has_group).sum()),
        )
    labels = first.loc[has_group, ["group"]].assign(
        domain=first.loc[has_group, "domain"].fillna(promptset)
    )
    positions = np.flatnonzero(has_group)
    groups = {
        key: positions[idx]
        for key, idx in labels.groupby(["domain", "group"], sort=True).indices.items()
    }
    for (_domain, group), idx in sorted(groups.items()):
        for metric, column in GROUP_METRICS:
            if column not in frames[0].columns:
                continue
            values = _stack(frames, column)[:, idx]
            low, high = bootstrap_ci(values, **boot.kwargs(model, promptset, group, metric))
            rows[(promptset, group, metric)] = (float(values.mean()), low, high)
    for domain in sorted({d for d, _ in groups}):
        members = [idx for (d, _g), idx in sorted(groups.items()) if d == domain]
        if len(members) < 2:
            log.warning("%s: domain %r has a single group; no disparity rows", source, domain)
            continue
        for metric, column, kind in DISPARITY_METRICS:
            if column not in frames[0].columns:
                continue
            values = _stack(frames, column)
            rows[(promptset, domain, metric)] = group_disparity_ci(
                [values[:, idx] for idx in members],
                kind,
                **boot.kwargs(model, promptset, domain, metric),
            )
    return rows


def _diff_rows(
    frames: list[pd.DataFrame],
    references: list[pd.DataFrame],
    model: str,
    promptset: str,
    boot: _Bootstrap,
) -> Rows:
    """Paired differences (model minus reference) over the same prompts and seeds."""
    order = frames[0]["prompt_id"]
    aligned = [r.set_index("prompt_id").reindex(order).reset_index() for r in references]
    rows: Rows = {}
    for metric, column in DIFF_METRICS:
        rows[(promptset, "", metric)] = paired_difference_ci(
            _stack(frames, column),
            _stack(aligned, column),
            **boot.kwargs(model, promptset, "", metric),
        )
    return rows


def _across_seeds(
    per_seed: Mapping[int, Rows], pooled: Rows | None = None
) -> dict[tuple[str, str, str], tuple[float, float, float, float, int]]:
    """(value, ci_low, ci_high, seed_sd, n_seeds) per row from the per-seed rows.

    ``value`` is the mean over seeds, ``seed_sd`` their std (ddof=1, NaN with
    one seed). The interval comes from ``pooled`` (rows computed on all seeds'
    per-prompt values at once); without it (intrinsic scores, whose units are
    not ours to resample), the mean of the per-seed bounds, which is wider
    than a pooled interval would be.
    """
    collected: dict[tuple[str, str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for seed in sorted(per_seed):
        for key, row in per_seed[seed].items():
            collected[key].append(row)
    out = {}
    for key, rows in collected.items():
        values = np.array([r[0] for r in rows])
        if pooled is not None and key in pooled:
            low, high = pooled[key][1], pooled[key][2]
        else:
            low = float(np.mean([r[1] for r in rows]))
            high = float(np.mean([r[2] for r in rows]))
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        out[key] = (float(values.mean()), low, high, sd, len(values))
    return out


# --------------------------------------------------------------------------- the tables


def aggregate_metrics(
    score_files: Mapping[tuple[int, str, str], Path],
    prompt_files: Mapping[str, Path],
    eval_files: Mapping[tuple[int, str], Path],
    quality_files: Mapping[tuple[int, str, str], Path],
    intrinsic_files: Mapping[tuple[int, str], Path],
    model_info: Mapping[str, tuple[str, float | None]],
    out_csv: Path,
    out_per_seed_csv: Path,
    toxicity_threshold: float = 0.5,
    sentiment_thresholds: tuple[float, float] = (0.5, -0.5),
    quality_thresholds: Mapping[str, float | None] | None = None,
    bootstrap: Mapping[str, Any] | None = None,
    reference_model: str = "teacher",
) -> pd.DataFrame:
    """Compute every metric, write both tables, and return ``metrics.csv``'s frame.

    ``score_files`` maps ``(seed, model, promptset)`` to a scores CSV,
    ``prompt_files`` a promptset to its prompts JSONL, ``eval_files`` ``(seed,
    model)`` to the evaluation JSON of the models that seed uses,
    ``quality_files`` ``(seed, model, promptset)`` to a quality report (may be
    empty), ``intrinsic_files`` ``(seed, model)`` to an intrinsic-bias CSV with
    columns ``promptset, group, metric, value, ci_low, ci_high`` (may be
    empty; passed through). ``model_info`` maps a model to ``(compression,
    level)``; a model it lacks falls back to :func:`model_compression`.
    ``quality_thresholds`` are ``max_<metric>``/``min_<metric>`` limits on the
    quality reports (:func:`compfair.quality.degeneracy_reasons`);
    ``bootstrap`` holds ``n_resamples`` (1000), ``confidence`` (0.95),
    ``seed`` (0) and ``method`` (``"percentile"`` or ``"BCa"``). Paired
    differences are taken to ``reference_model`` over the seeds both share.
    """
    boot = _Bootstrap.from_config(bootstrap)
    quality_thresholds = dict(quality_thresholds or {})
    for key in sorted(quality_thresholds):  # a typo must not silently switch a guard off
        kind, _, metric = key.partition("_")
        if kind not in ("max", "min") or metric not in QUALITY_METRICS:
            raise InputError(
                f"quality_thresholds.{key}: expected max_<metric> or min_<metric> with a "
                f"metric of {', '.join(QUALITY_METRICS)}"
            )
    prompts = {ps: _read_prompts(Path(p)) for ps, p in sorted(prompt_files.items())}

    # -- per-prompt values of every (seed, model, promptset)
    per_prompt: dict[tuple[int, str, str], pd.DataFrame] = {}
    for (seed, model, promptset), path in sorted(score_files.items()):
        path = Path(path)
        if promptset not in prompts:
            raise InputError(f"{path}: no prompts file given for prompt set {promptset!r}")
        joined = _join(_read_scores(path), prompts[promptset], path, Path(prompt_files[promptset]))
        per_prompt[(seed, model, promptset)] = per_prompt_statistics(
            joined, toxicity_threshold, sentiment_thresholds
        )

    per_seed: dict[str, dict[int, Rows]] = defaultdict(lambda: defaultdict(dict))
    across: dict[str, dict[tuple[str, str, str], tuple]] = defaultdict(dict)

    # -- prompt-set metrics and paired differences
    seeds_of: dict[tuple[str, str], list[int]] = defaultdict(list)
    for seed, model, promptset in per_prompt:
        seeds_of[(model, promptset)].append(seed)
    models_scored = {m for m, _ in seeds_of}
    if models_scored and reference_model not in models_scored:
        log.warning("reference model %r has no scores: no *_diff rows", reference_model)
    for (model, promptset), seeds in sorted(seeds_of.items()):
        for seed in seeds:
            source = str(score_files[(seed, model, promptset)])
            values = [per_prompt[(seed, model, promptset)]]
            per_seed[model][seed].update(_promptset_rows(values, model, promptset, boot, source))
        if len(seeds) == 1:
            pooled = per_seed[model][seeds[0]]
        else:
            pooled = _promptset_rows(
                [per_prompt[(s, model, promptset)] for s in seeds],
                model,
                promptset,
                boot,
                ", ".join(str(score_files[(s, model, promptset)]) for s in seeds),
            )
        block = {
            s: {k: v for k, v in per_seed[model][s].items() if k[0] == promptset} for s in seeds
        }
        across[model].update(_across_seeds(block, pooled))

        if model == reference_model or reference_model not in models_scored:
            continue
        common = [s for s in seeds if (s, reference_model, promptset) in per_prompt]
        if len(common) < len(seeds):
            log.warning(
                "%s/%s: the reference %r lacks seed(s) %s; differences use seeds %s",
                model,
                promptset,
                reference_model,
                sorted(set(seeds) - set(common)),
                common,
            )
        if not common:
            continue
        diffs = {
            s: _diff_rows(
                [per_prompt[(s, model, promptset)]],
                [per_prompt[(s, reference_model, promptset)]],
                model,
                promptset,
                boot,
            )
            for s in common
        }
        for s, rows in diffs.items():
            per_seed[model][s].update(rows)
        if len(common) == 1:
            pooled_diff = diffs[common[0]]
        else:
            pooled_diff = _diff_rows(
                [per_prompt[(s, model, promptset)] for s in common],
                [per_prompt[(s, reference_model, promptset)] for s in common],
                model,
                promptset,
                boot,
            )
        across[model].update(_across_seeds(diffs, pooled_diff))

    # -- quality guards
    flagged: set[str] = set()
    quality: dict[str, dict[int, Rows]] = defaultdict(lambda: defaultdict(dict))
    for (seed, model, promptset), path in sorted(quality_files.items()):
        path = Path(path)
        report = _read_object(path)
        for metric in QUALITY_METRICS:
            if metric not in report:
                if metric in _OPTIONAL_QUALITY:
                    continue
                raise InputError(f"{path}: missing key {metric!r}")
            value = _number(report[metric], path, metric, allow_null=True)
            quality[model][seed][(promptset, "", metric)] = (value, math.nan, math.nan)
        reasons = degeneracy_reasons(report, quality_thresholds)
        if reasons:
            log.warning(
                "%s: degenerate continuations (%s); flagging %r", path, "; ".join(reasons), model
            )
            flagged.add(model)
    for model, by_seed in quality.items():
        for seed, rows in by_seed.items():
            per_seed[model][seed].update(rows)
        across[model].update(_across_seeds(by_seed))

    # -- model-level rows: evaluation and intrinsic bias, each distinct file once
    for files, reader in ((eval_files, _eval_rows), (intrinsic_files, _intrinsic_rows)):
        by_model: dict[str, dict[int, Path]] = defaultdict(dict)
        for (seed, model), path in sorted(files.items()):
            by_model[model][seed] = Path(path)
        for model, paths in by_model.items():
            cache: dict[Path, Rows] = {}
            distinct: dict[int, Rows] = {}
            for seed, path in sorted(paths.items()):
                resolved = path.resolve()
                if resolved not in cache:
                    cache[resolved] = reader(path)
                    distinct[seed] = cache[resolved]
                per_seed[model][seed].update(cache[resolved])
            across[model].update(_across_seeds(distinct))

    # -- the two tables
    info = {m: tuple(model_info.get(m, model_compression(m))) for m in set(per_seed) | set(across)}

    def model_columns(model: str) -> tuple[str, str, float]:
        compression, level = info[model]
        return model, compression, float(level) if level is not None else math.nan

    seed_records = [
        (seed, *model_columns(model), ps, g, m, v, lo, hi)
        for model, by_seed in per_seed.items()
        for seed, rows in by_seed.items()
        for (ps, g, m), (v, lo, hi) in rows.items()
    ]
    records = [
        (*model_columns(model), ps, g, m, v, lo, hi, sd, n, model in flagged)
        for model, rows in across.items()
        for (ps, g, m), (v, lo, hi, sd, n) in rows.items()
    ]
    per_seed_table = _sorted(
        pd.DataFrame.from_records(seed_records, columns=PER_SEED_COLUMNS), info, ["seed"]
    )
    table = _sorted(pd.DataFrame.from_records(records, columns=METRICS_COLUMNS), info, [])
    per_seed_table["seed"] = per_seed_table["seed"].astype(int)
    table["n_seeds"] = table["n_seeds"].astype(int)
    table["flagged"] = table["flagged"].astype(bool)
    write_csv(out_per_seed_csv, per_seed_table)
    write_csv(out_csv, table)
    log.info(
        "wrote %d metric rows (%d per seed) for %d models to %s; flagged: %s",
        len(table),
        len(per_seed_table),
        table["model"].nunique(),
        out_csv,
        ", ".join(sorted(flagged)) or "none",
    )
    return table


def _eval_rows(path: Path) -> Rows:
    data = _read_object(path)
    rows: Rows = {}
    for metric in EVAL_METRICS:
        if metric not in data:
            raise InputError(f"{path}: missing key {metric!r}")
        rows[("", "", metric)] = (_number(data[metric], path, metric), math.nan, math.nan)
    return rows


def _intrinsic_rows(path: Path) -> Rows:
    frame = _read_intrinsic(path)
    return {
        (r.promptset, r.group, r.metric): (float(r.value), float(r.ci_low), float(r.ci_high))
        for r in frame.itertuples(index=False)
    }


def _sorted(table: pd.DataFrame, info: Mapping[str, tuple], first: list[str]) -> pd.DataFrame:
    """Rows in a fixed order: [seed,] model, promptset, metric (METRIC_ORDER), group."""
    if table.empty:
        return table
    rank = {m: i for i, m in enumerate(METRIC_ORDER)}
    models = sorted(table["model"].unique(), key=lambda m: model_sort_key(m, info[m]))
    model_rank = {m: i for i, m in enumerate(models)}
    table = table.assign(
        _model=table["model"].map(model_rank),
        _metric=table["metric"].map(lambda m: rank.get(m, len(rank))),
    )
    return (
        table.sort_values(
            [*first, "_model", "promptset", "_metric", "metric", "group"], kind="stable"
        )
        .drop(columns=["_model", "_metric"])
        .reset_index(drop=True)
    )
