"""The intrinsic-bias rows: each benchmark's values with intervals, and items against the parent.

``evaluate_model`` writes, per model, a benchmark table (point values, one row
per benchmark, group and metric) and the per-item values whose means are its
shares. Here the per-item values give each row its interval (the benchmark's
:meth:`~compfair.intrinsic.registry.IntrinsicBenchmark.intervals`), so the
``bootstrap`` settings rerun the tables, not the models' evaluations, and the
paired differences to the parent, item by item (``<metric>_diff`` rows and
``comparisons.csv``), on the items both models scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from compfair.intrinsic import get_benchmark
from compfair.intrinsic.tables import INTERVAL_COLUMNS, concat, with_intervals
from compfair.io import InputError
from compfair.metrics import Bootstrap, note_of, paired_difference_test
from compfair.tables.collect import Collected, distinct_files
from compfair.tables.files import read_intrinsic, read_items
from compfair.tables.rows import Estimate, Key, Paired, PairedRows, Rows


def benchmark_intervals(items: pd.DataFrame, boot: Bootstrap, source: Path) -> pd.DataFrame:
    """The intervals (:data:`~compfair.intrinsic.tables.INTERVAL_COLUMNS`) every benchmark of
    a per-item table (read from ``source``) gives its rows."""
    frames = []
    for name, part in items.groupby("benchmark", sort=True):
        frame = get_benchmark(name).intervals(part.reset_index(drop=True), boot)
        if tuple(frame.columns) != INTERVAL_COLUMNS or set(frame["promptset"]) - {name}:
            raise ValueError(
                f"{source}: benchmark {name!r}: intervals gave columns {list(frame.columns)} "
                f"and benchmarks {sorted(set(frame['promptset']))}, expected "
                f"{list(INTERVAL_COLUMNS)} of {name!r}"
            )
        frames.append(frame)
    return concat(frames, INTERVAL_COLUMNS)


def _benchmark_rows(points: Path, items: Path | None, boot: Bootstrap) -> Rows:
    """A model's benchmark table as rows, with the intervals of its per-item values ``items``
    (none without them)."""
    intervals = (
        concat([], INTERVAL_COLUMNS)
        if items is None
        else benchmark_intervals(read_items(items), boot, items)
    )
    table = read_intrinsic(points)
    try:
        table = with_intervals(table, intervals)
    except ValueError as exc:  # an interval of no row, two of one (pandas' MergeError)
        raise InputError(f"{points} and {items}: {exc}") from exc
    return {
        Key(r.promptset, r.group, r.metric): Estimate(
            float(r.value), float(r.ci_low), float(r.ci_high), str(r.ci_note)
        )
        for r in table.itertuples(index=False)
    }


def add_intrinsic_rows(
    intrinsic_files: Mapping[tuple[int, str], Path],
    item_files: Mapping[tuple[int, str], Path],
    boot: Bootstrap,
    rows: Collected,
) -> None:
    """Every model's benchmark tables, each distinct file once: model-level rows whose
    intervals come from the per-item file of the same (seed, model) in ``item_files``."""
    for model, by_seed in distinct_files(intrinsic_files).items():
        block = {
            seed: _benchmark_rows(path, item_files.get((seed, model)), boot)
            for seed, path in by_seed.items()
        }
        rows.add_block(model, block)


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


def item_comparisons(
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
            key = Key(benchmark, group, metric)
            diff, low, high, p = paired_difference_test(
                a, b, **boot.kwargs(model, "diff", *key.parts())
            )
            rows[key] = Paired(
                value=float(a.mean()),
                parent_value=float(b.mean()),
                diff=diff,
                ci_low=low,
                ci_high=high,
                p_value=p,
                n_units=a.shape[1],
                n_seeds=a.shape[0],
                ci_note=note_of(a - b, boot),
            )
    return rows


def add_item_comparisons(
    item_files: Mapping[tuple[int, str], Path],
    parents: Mapping[str, str | None],
    boot: Bootstrap,
    rows: Collected,
) -> None:
    """Intrinsic benchmarks against the parent, item by item: per training seed and pooled."""
    items = {key: read_items(Path(path)) for key, path in sorted(item_files.items())}
    for model, by_seed in sorted(distinct_files(item_files).items()):
        parent = parents.get(model)
        seeds = [s for s in sorted(by_seed) if parent is not None and (s, parent) in items]
        if not seeds:
            continue
        blocks = {
            s: item_comparisons([items[(s, model)]], [items[(s, parent)]], model, boot)
            for s in seeds
        }
        pooled = (
            blocks[seeds[0]]
            if len(seeds) == 1
            else item_comparisons(
                [items[(s, model)] for s in seeds], [items[(s, parent)] for s in seeds], model, boot
            )
        )
        rows.add_paired(model, blocks, pooled)
