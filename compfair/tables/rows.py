"""The rows of the tables: one frozen dataclass per table, whose fields are its columns.

A table's row is built by name from the pieces the stage computes: where a
value belongs (:class:`Key`), which model it is of (:class:`ModelInfo`), and
the value itself (:class:`Estimate` for one seed, :class:`AcrossSeeds` over
the seeds, :class:`Paired` against a parent or a control). :func:`to_frame`
turns rows into a DataFrame whose columns are the dataclass's fields in their
order (:func:`columns`), so a table's columns are written down once, as its
dataclass:

========================  ==============================================
:class:`MetricRow`        ``tables/metrics.csv``
:class:`SeedMetricRow`    ``tables/metrics_per_seed.csv``
:class:`ComparisonRow`    ``tables/comparisons.csv``
:class:`MatchedRow`       ``tables/matched_controls.csv``
:class:`ModelRow`         ``tables/models.csv`` (with the quality columns of
                          :mod:`compfair.tables.models` after ``sparsity``)
========================  ==============================================
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from compfair.metrics import benjamini_hochberg
from compfair.tables.specs import METRIC_ORDER

# --------------------------------------------------------------------------- the pieces


@dataclass(frozen=True)
class Key:
    """Where a value is in a model's block: prompt set (or benchmark), group, metric.

    ``group`` is ``""`` for a whole prompt set and for model-level rows, a
    group's name for per-group rows and a domain for disparities.
    """

    promptset: str
    group: str
    metric: str

    def parts(self) -> tuple[str, str, str]:
        """``(promptset, group, metric)``: the strings a row's bootstrap seed is derived from."""
        return self.promptset, self.group, self.metric

    def diff(self) -> Key:
        """The key of the paired difference to the parent: ``<metric>_diff``."""
        return dataclasses.replace(self, metric=f"{self.metric}_diff")


@dataclass(frozen=True)
class Estimate:
    """A value with its interval; ``ci_note`` says why there is none (``""`` when there is)."""

    value: float
    ci_low: float
    ci_high: float
    ci_note: str

    @classmethod
    def point(cls, value: float) -> Estimate:
        """A value with no interval to give (a count, a size, a setting)."""
        return cls(value, math.nan, math.nan, "")


@dataclass(frozen=True)
class AcrossSeeds:
    """A value over the seeds: their mean, an interval, and the per-seed spread (ddof 1)."""

    value: float
    ci_low: float
    ci_high: float
    seed_sd: float
    n_seeds: int
    ci_note: str


@dataclass(frozen=True)
class Paired:
    """A model minus its parent (or control) over the units and seeds both have values for."""

    value: float
    parent_value: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int
    n_seeds: int
    ci_note: str

    def difference(self) -> Estimate:
        """The difference and its interval, as a ``<metric>_diff`` row has them."""
        return Estimate(self.diff, self.ci_low, self.ci_high, self.ci_note)


#: A block of rows: key -> estimate (one seed, or pooled), or key -> paired difference.
Rows = dict[Key, Estimate]
PairedRows = dict[Key, Paired]


@dataclass(frozen=True)
class ModelInfo:
    """The columns that say which model a row is about."""

    model: str
    family: str
    method: str
    level: str | None
    parent: str | None

    @classmethod
    def of(cls, variants: Mapping[str, Mapping[str, Any]], model: str) -> ModelInfo:
        """The model's record of ``variants`` (by name); empty columns for a model not there."""
        v = variants.get(model, {"family": "", "method": "", "level": None, "parent": None})
        return cls(model, v["family"], v["method"], v["level"], v["parent"])


def fields_of(*parts: Any) -> dict[str, Any]:
    """The fields of dataclass instances by name (values not copied), merged; a name given
    by two parts is an error, so a row never takes a column from the wrong piece."""
    out: dict[str, Any] = {}
    for part in parts:
        for f in dataclasses.fields(part):
            if f.name in out:
                raise TypeError(f"field {f.name!r} given twice")
            out[f.name] = getattr(part, f.name)
    return out


# --------------------------------------------------------------------------- the tables' rows


@dataclass(frozen=True)
class MetricRow:
    """A row of ``metrics.csv``: a metric of a model, over its seeds."""

    model: str
    family: str
    method: str
    level: str | None
    parent: str | None
    promptset: str
    group: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    seed_sd: float
    n_seeds: int
    ci_note: str
    flagged: bool


@dataclass(frozen=True)
class SeedMetricRow:
    """A row of ``metrics_per_seed.csv``: a metric of a model for one generation seed."""

    seed: int
    model: str
    family: str
    method: str
    level: str | None
    parent: str | None
    promptset: str
    group: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    ci_note: str


@dataclass(frozen=True)
class ComparisonRow:
    """A row of ``comparisons.csv``: a model against its parent, paired over shared units."""

    model: str
    family: str
    method: str
    level: str | None
    parent: str | None
    promptset: str
    group: str
    metric: str
    value: float
    parent_value: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    n_units: int
    n_seeds: int
    ci_note: str
    flagged: bool


@dataclass(frozen=True)
class MatchedRow:
    """A row of ``matched_controls.csv``: a model against a matched control (``draws`` 1)
    or against all draws of a control kind (``draws`` k)."""

    model: str
    control: str
    promptset: str
    group: str
    metric: str
    value: float
    control_value: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    n_units: int
    perplexity_ratio: float
    control_perplexity_ratio: float
    ci_note: str
    draws: int


@dataclass(frozen=True)
class ModelRow:
    """A row of ``models.csv``: a model's size, held-out perplexity and quality flags."""

    model: str
    family: str
    method: str
    level: str | None
    parent: str | None
    matches: str | None
    perplexity: float
    perplexity_ratio: float
    perplexity_ratio_low: float
    perplexity_ratio_high: float
    n_parameters: float
    n_prunable: float
    sparsity: float
    flagged: bool
    degradation: str
    flag_reasons: str


# --------------------------------------------------------------------------- rows to frames


def columns(kind: type) -> list[str]:
    """The columns of a table: its row dataclass's fields, in order."""
    return [f.name for f in dataclasses.fields(kind)]


def to_frame(rows: Iterable[Any], kind: type) -> pd.DataFrame:
    """Rows of dataclass ``kind`` as a DataFrame with :func:`columns` ``(kind)``."""
    names = columns(kind)
    records = []
    for row in rows:
        if type(row) is not kind:
            raise TypeError(f"a {type(row).__name__} among rows of {kind.__name__}")
        records.append(tuple(getattr(row, name) for name in names))
    return pd.DataFrame.from_records(records, columns=names)


def ordered_frame(
    rows: Iterable[Any], kind: type, model_order: Sequence[str], first: Sequence[str] = ()
) -> pd.DataFrame:
    """Rows as a frame in the tables' order: ``first`` columns, model (``model_order``, others
    after), promptset, metric (:data:`~compfair.tables.specs.METRIC_ORDER`, each
    ``_diff`` right after its metric, others by name), group."""
    table = to_frame(rows, kind)
    if table.empty:
        return table
    model_rank = {m: i for i, m in enumerate(model_order)}
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


def adjust_p_values(table: pd.DataFrame) -> pd.DataFrame:
    """Fill ``p_adjusted``: Benjamini-Hochberg within each family of comparisons.

    A family is one metric on one prompt set (every model against its parent,
    every group), so that the handful of small p-values a table of hundreds
    of rows gives by chance are not read as findings.
    """
    if table.empty:
        return table
    for _, index in table.groupby(["promptset", "metric"], sort=False).groups.items():
        table.loc[index, "p_adjusted"] = benjamini_hochberg(table.loc[index, "p_value"])
    return table
