"""The tables every benchmark writes, and the rows they are made of.

A model's benchmark table (:data:`COLUMNS`) holds one row per (benchmark,
group, metric): ``promptset`` is the benchmark's name, ``group`` a bias type or
``""`` (overall), ``value`` the metric. The per-item table (:data:`ITEM_COLUMNS`)
holds one row per item and metric, whose mean over items is the benchmark
table's value. Both are written by ``evaluate_model`` and hold no interval: the
tables stage computes the intervals from the per-item values
(:meth:`~compfair.intrinsic.registry.IntrinsicBenchmark.intervals`, rows of
:data:`INTERVAL_COLUMNS`), so the ``bootstrap`` settings rerun only the tables.
An interval is a bootstrap over items (:func:`compfair.metrics.bootstrap_ci`),
empty with ``ci_note`` saying why for a row of fewer than
``bootstrap.min_units`` items or of identical items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from compfair.metrics import Bootstrap, bootstrap_ci, note_of

#: Columns of a benchmark table: point values.
COLUMNS = ("promptset", "group", "metric", "value")
#: Columns of a benchmark's intervals (one row per row of its table that has one).
INTERVAL_COLUMNS = ("promptset", "group", "metric", "ci_low", "ci_high", "ci_note")
#: Columns of the per-item table (one row per item and metric).
ITEM_COLUMNS = ("benchmark", "item_id", "group", "metric", "value")
#: Columns of a benchmark table with its intervals (:func:`with_intervals`).
TIDY_COLUMNS = (*COLUMNS, *INTERVAL_COLUMNS[3:])


def share_row(promptset: str, group: str, metric: str, x: np.ndarray) -> tuple:
    """A row of :data:`COLUMNS`: the mean of per-item values ``x``."""
    return (promptset, group, metric, float(x.mean()))


def interval_row(promptset: str, group: str, metric: str, x: np.ndarray, boot: Bootstrap) -> tuple:
    """A row of :data:`INTERVAL_COLUMNS`: the bootstrap interval of the mean of per-item
    values ``x`` over items (seeded from ``boot`` and the row) and its note."""
    low, high = bootstrap_ci(x, np.mean, **boot.kwargs(promptset, group, metric))
    return (promptset, group, metric, low, high, note_of(x, boot))


def by_group(frame: pd.DataFrame, column: str = "bias_type") -> list[tuple[str, pd.DataFrame]]:
    """Overall (``""``) first, then each value of ``column`` in sorted order (rows in order)."""
    out = [("", frame)]
    out += [(str(g), part) for g, part in sorted(frame.groupby(column), key=lambda x: x[0])]
    return out


def mean_interval_rows(items: pd.DataFrame, boot: Bootstrap) -> list[tuple]:
    """The interval of every metric of a benchmark's per-item table (:data:`ITEM_COLUMNS`):
    the mean of its items, overall and per group (rows of :data:`INTERVAL_COLUMNS`)."""
    rows = []
    for (benchmark, metric), part in items.groupby(["benchmark", "metric"], sort=False):
        for group, members in by_group(part, "group"):
            x = members["value"].to_numpy(dtype=np.float64)
            rows.append(interval_row(benchmark, group, metric, x, boot))
    return rows


def mean_intervals(items: pd.DataFrame, boot: Bootstrap) -> pd.DataFrame:
    """:func:`mean_interval_rows` as a frame of :data:`INTERVAL_COLUMNS`."""
    return pd.DataFrame(mean_interval_rows(items, boot), columns=list(INTERVAL_COLUMNS))


def with_intervals(table: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """``table``'s rows (:data:`COLUMNS`) in order, with their intervals (rows of
    :data:`INTERVAL_COLUMNS`): :data:`TIDY_COLUMNS`, NaN and ``""`` for a row without one.

    Raises:
        ValueError: an interval of a row the table lacks, or a row with two.
    """
    keys = list(COLUMNS[:3])
    merged = table.merge(intervals, on=keys, how="left", validate="one_to_one")
    known = intervals.merge(table[keys], on=keys, how="left", indicator=True)
    orphans = known[known["_merge"] == "left_only"]
    if len(orphans):
        raise ValueError(f"an interval of a row the table lacks: {tuple(orphans.iloc[0][keys])}")
    return merged.assign(ci_note=merged["ci_note"].fillna(""))[list(TIDY_COLUMNS)]


def item_table(benchmark: str, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-item rows (:data:`ITEM_COLUMNS`) from frames with ``item_id, bias_type, metric,
    value`` columns (``bias_type`` becomes ``group``), in the order of ``parts``."""
    frame = pd.concat(parts, ignore_index=True).rename(columns={"bias_type": "group"})
    frame = frame.assign(benchmark=benchmark, value=frame["value"].astype(np.float64))
    return frame[list(ITEM_COLUMNS)]


def concat(tables: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """The tables one after the other; an empty table with ``columns`` when there are none."""
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(columns))


__all__ = [
    "COLUMNS",
    "INTERVAL_COLUMNS",
    "ITEM_COLUMNS",
    "TIDY_COLUMNS",
    "by_group",
    "concat",
    "interval_row",
    "item_table",
    "mean_interval_rows",
    "mean_intervals",
    "share_row",
    "with_intervals",
]
