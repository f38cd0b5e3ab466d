"""The two tables every benchmark writes, and the rows they are made of.

The tidy table (:data:`COLUMNS`) holds one row per (benchmark, group,
metric): ``promptset`` is the benchmark's name, ``group`` a bias type or ``""``
(overall), ``value`` the metric and ``ci_low``/``ci_high`` its bootstrap
interval over items (:func:`compfair.metrics.bootstrap_ci` with the study's
``bootstrap`` settings; empty for a count, and with ``ci_note`` saying why for
a row of fewer than ``bootstrap.min_units`` items or of identical items). The per-item table (:data:`ITEM_COLUMNS`) holds one row per
item and metric, whose mean over items is the tidy table's value, for paired
comparisons of a model with its parent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from compfair.metrics import Bootstrap, bootstrap_ci, note_of

#: Columns of the tidy table.
COLUMNS = ("promptset", "group", "metric", "value", "ci_low", "ci_high", "ci_note")
#: Columns of the per-item table (one row per item and metric).
ITEM_COLUMNS = ("benchmark", "item_id", "group", "metric", "value")


def share_row(promptset: str, group: str, metric: str, x: np.ndarray, boot: Bootstrap) -> tuple:
    """A tidy row: mean of per-item values ``x``, its bootstrap interval over items and note."""
    low, high = bootstrap_ci(x, np.mean, **boot.kwargs(promptset, group, metric))
    return (promptset, group, metric, float(x.mean()), low, high, note_of(x, boot))


def by_group(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Overall (``""``) first, then each ``bias_type`` in sorted order."""
    out = [("", frame)]
    out += [(str(g), part) for g, part in sorted(frame.groupby("bias_type"), key=lambda x: x[0])]
    return out


def item_table(benchmark: str, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-item rows (:data:`ITEM_COLUMNS`) from frames with ``item_id, bias_type, metric,
    value`` columns (``bias_type`` becomes ``group``), in the order of ``parts``."""
    frame = pd.concat(parts, ignore_index=True).rename(columns={"bias_type": "group"})
    frame = frame.assign(benchmark=benchmark, value=frame["value"].astype(np.float64))
    return frame[list(ITEM_COLUMNS)]


def concat(tables: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """The tables one after the other; an empty table with ``columns`` when there are none."""
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(columns))


__all__ = ["COLUMNS", "ITEM_COLUMNS", "by_group", "concat", "item_table", "share_row"]
