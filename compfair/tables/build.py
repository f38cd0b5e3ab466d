"""The tables stage: every result file in, the study's tables out (rule ``aggregate_metrics``).

:func:`aggregate_metrics` reads the per-job result files, gathers the rows
(:mod:`compfair.tables.collect`, :mod:`compfair.tables.intrinsic`), flags the
models (:mod:`compfair.tables.flags`) and writes ``metrics.csv``,
``metrics_per_seed.csv``, ``comparisons.csv``, ``models.csv`` and
``matched_controls.csv`` (their columns: :mod:`compfair.tables.rows`). Every
bootstrap is seeded from ``bootstrap.seed`` and a hash of its row: the same
inputs give byte-identical tables.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from compfair.io import write_csv
from compfair.metrics import Bootstrap
from compfair.tables.collect import (
    Collected,
    add_comparison_rows,
    add_eval_rows,
    add_promptset_rows,
    add_quality_rows,
)
from compfair.tables.controls import matched_controls_table
from compfair.tables.files import read_eval, read_quality
from compfair.tables.flags import Flags, flag_models
from compfair.tables.intrinsic import add_intrinsic_rows, add_item_comparisons
from compfair.tables.models import models_table
from compfair.tables.prompts import per_prompt_values
from compfair.tables.rows import (
    ComparisonRow,
    MetricRow,
    ModelInfo,
    SeedMetricRow,
    adjust_p_values,
    fields_of,
    ordered_frame,
)

log = logging.getLogger(__name__)


def _metric_rows(rows: Collected, info: Mapping, flags: Flags) -> Iterator[MetricRow]:
    for model, block in rows.across.items():
        about = ModelInfo.of(info, model)
        for key, row in block.items():
            yield MetricRow(**fields_of(about, key, row), flagged=model in flags)


def _seed_rows(rows: Collected, info: Mapping) -> Iterator[SeedMetricRow]:
    for model, by_seed in rows.per_seed.items():
        about = ModelInfo.of(info, model)
        for seed, block in by_seed.items():
            for key, row in block.items():
                yield SeedMetricRow(seed=seed, **fields_of(about, key, row))


def _comparison_rows(rows: Collected, info: Mapping, flags: Flags) -> Iterator[ComparisonRow]:
    for model, block in rows.paired.items():
        about = ModelInfo.of(info, model)
        for key, row in block.items():
            yield ComparisonRow(
                **fields_of(about, key, row), p_adjusted=math.nan, flagged=model in flags
            )


def write_tables(
    rows: Collected,
    variants: list[dict],
    flags: Flags,
    evals: Mapping,
    outputs: Mapping[str, Path],
    quality: Mapping[str, Mapping[int, dict]] | None = None,
) -> pd.DataFrame:
    """Write ``metrics``, ``per_seed``, ``comparisons`` and ``models`` (paths in ``outputs``);
    ``quality``: model -> seed -> its quality report (models.csv's quality columns)."""
    info = {v["model"]: v for v in variants}
    order = [v["model"] for v in variants]
    table = ordered_frame(_metric_rows(rows, info, flags), MetricRow, order)
    per_seed = ordered_frame(_seed_rows(rows, info), SeedMetricRow, order, ["seed"])
    comparisons = ordered_frame(_comparison_rows(rows, info, flags), ComparisonRow, order)
    comparisons = adjust_p_values(comparisons)
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
    write_csv(outputs["models"], models_table(variants, evals, flags, quality))
    write_csv(outputs["metrics"], table)
    return table


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
    intrinsic_seed: int | None = None,
) -> pd.DataFrame:
    """Compute every metric, comparison and flag; write the tables; return ``metrics``.

    ``score_files`` maps ``(seed, model, promptset)`` to a scores CSV,
    ``prompt_files`` a prompt set to its prompts JSONL, ``eval_files`` and
    ``quality_files`` ``(seed, model)`` to the evaluation and quality JSON of
    the models that seed uses, ``intrinsic_files`` ``(seed, model)`` to an
    intrinsic-bias CSV (may be empty) and ``item_files`` to its per-item
    values (compared item by item with the parent's). ``variants`` are the records of
    :meth:`compfair.variants.Variants.table` (model, family, method, level,
    parent, matches), in display order. ``outputs`` maps ``metrics``, ``per_seed``,
    ``comparisons``, ``models`` and optionally ``matched_controls`` to paths. ``samples`` gives K per prompt
    set: a prompt with another number of scored samples is an error. The intervals of the
    benchmark tables are seeded from ``intrinsic_seed`` (the study's ``seed``, which also
    draws their items; None: ``bootstrap.seed``), the others from ``bootstrap.seed``.
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
    add_eval_rows(eval_files, rows)
    intrinsic_boot = boot if intrinsic_seed is None else replace(boot, seed=intrinsic_seed)
    add_intrinsic_rows(intrinsic_files, item_files or {}, intrinsic_boot, rows)
    add_quality_rows(quality, rows)
    add_item_comparisons(item_files or {}, parents, boot, rows)
    evals = {key: read_eval(Path(path)) for key, path in sorted(eval_files.items())}
    flags = flag_models(parents, eval_files, quality_files, dict(quality_thresholds or {}), boot)
    for model, found in sorted(flags.items()):
        log.warning("flagging %s: %s", model, "; ".join(map(str, found)))
    table = write_tables(rows, variants, flags, evals, outputs, quality)
    if "matched_controls" in outputs:
        matched = matched_controls_table(per_prompt, item_files or {}, variants, evals, boot)
        write_csv(outputs["matched_controls"], matched)
    log.info(
        "wrote %d metric rows for %d models; flagged: %s",
        len(table),
        table["model"].nunique() if len(table) else 0,
        ", ".join(sorted(flags)) or "none",
    )
    return table
