"""What the figures read: the study's tables, the options, and row selections.

:class:`Tables` holds the frames of ``tables/`` (see :mod:`compfair.tables.rows`
for their columns), :class:`FigureOptions` what the config says about the
report. The selections return one row per model, indexed by model name, with
``value, lo, hi`` (and for comparisons ``parent, parent_value``), so that a
figure never parses a model name or filters a tidy table by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from compfair.io import InputError, read_jsonl

#: Columns each table must have (others are kept).
REQUIRED = {
    "metrics": ("model", "promptset", "group", "metric", "value"),
    "comparisons": ("model", "parent", "promptset", "group", "metric", "diff", "ci_low", "ci_high"),
    "models": ("model", "family", "method", "level", "parent"),
    "calibration": ("scorer", "text", "roc_auc", "spearman", "threshold_rule", "kappa"),
    "audit": ("scorer", "domain", "group", "mean"),
}
#: Columns read as text whatever their cells look like (levels such as ``0.50`` stay labels).
TEXT_COLUMNS = (
    "model",
    "family",
    "method",
    "level",
    "parent",
    "promptset",
    "group",
    "metric",
    "scorer",
    "domain",
    "text",
    "threshold_rule",
    "flag_reasons",
)


@dataclass
class Tables:
    """The frames a figure may draw from.

    ``metrics``, ``comparisons`` and ``models`` are always there (possibly
    empty); ``calibration`` (``tables/scorer_calibration.csv``) and ``audit``
    (``tables/scorer_audit.csv``) are None when the study has none. Rows of
    ``models`` are in display order.
    """

    metrics: pd.DataFrame
    comparisons: pd.DataFrame
    models: pd.DataFrame
    calibration: pd.DataFrame | None = None
    audit: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name in ("metrics", "comparisons", "models", "calibration", "audit"):
            frame = getattr(self, name)
            if frame is not None:
                setattr(self, name, normalise(frame, name))


@dataclass(frozen=True)
class FigureOptions:
    """What the config says about the figures.

    ``confidence`` is the bootstrap level of every interval in the tables
    (``bootstrap.confidence``); ``group_domains`` maps a group of the bias
    prompt set to its domain; ``max_perplexity_ratio`` is the quality guard
    ``quality_thresholds.max_perplexity_ratio`` (None: not known or off).
    """

    toxicity_promptset: str = "rtp"
    bias_promptset: str = "bold"
    confidence: float = 0.95
    group_domains: Mapping[str, str] = field(default_factory=dict)
    max_perplexity_ratio: float | None = None

    @property
    def level(self) -> str:
        """The confidence level as figures write it: 0.95 -> ``"95 %"``, 0.975 -> ``"97.5 %"``."""
        return f"{round(100 * self.confidence, 2):g} %"

    @property
    def ci(self) -> str:
        """``"95 % CI"`` at the configured level."""
        return f"{self.level} CI"


def blank(series: pd.Series) -> pd.Series:
    """True where a cell is empty (NaN, ``""``, ``"nan"``, ``"None"``)."""
    return series.isna() | series.astype(str).str.strip().isin(["", "nan", "None"])


def truthy(series: pd.Series) -> pd.Series:
    """True where a cell says true (``True``, ``1``, ``yes``, in any case)."""
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "1.0", "yes"])


def normalise(frame: pd.DataFrame, name: str, source: str | None = None) -> pd.DataFrame:
    """``frame`` with text columns as strings (blank: NaN), numbers as floats and
    ``flagged`` as bool; raises :class:`InputError` naming ``source`` (or the
    table) when a column of :data:`REQUIRED` is missing."""
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    if missing:
        raise InputError(f"{source or name + ' table'}: missing columns {', '.join(missing)}")
    frame = frame.copy()
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            text = frame[column].astype(object).where(~blank(frame[column]), None)
            frame[column] = text.map(lambda v: None if v is None else str(v))
        elif column == "flagged":
            frame[column] = truthy(frame[column]).astype(bool)
        elif column not in TEXT_COLUMNS and frame[column].dtype == object:
            numbers = pd.to_numeric(frame[column], errors="coerce")
            if numbers.notna().sum() == (~blank(frame[column])).sum():
                frame[column] = numbers
    return frame.reset_index(drop=True)


def read_table(path: Path, name: str) -> pd.DataFrame:
    """One table of ``tables/`` by its :data:`REQUIRED` name; :class:`InputError` naming
    the file if it is missing, unreadable or lacks a column."""
    path = Path(path)
    try:
        frame = pd.read_csv(
            path,
            dtype=dict.fromkeys(TEXT_COLUMNS, str),
            keep_default_na=False,
            na_values=[""],
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot read the {name} table: {exc}") from exc
    return normalise(frame, name, str(path))


def read_tables(
    metrics: Path,
    comparisons: Path,
    models: Path,
    calibration: Path | None = None,
    audit: Path | None = None,
) -> Tables:
    """The study's tables from their CSV files (``calibration``/``audit`` optional)."""
    return Tables(
        metrics=read_table(metrics, "metrics"),
        comparisons=read_table(comparisons, "comparisons"),
        models=read_table(models, "models"),
        calibration=read_table(calibration, "calibration") if calibration else None,
        audit=read_table(audit, "audit") if audit else None,
    )


def group_domains_from_prompts(prompts_path: Path) -> dict[str, str]:
    """Map each group of a prompts file to its domain (prompts without a group are skipped)."""
    mapping: dict[str, str] = {}
    for row in read_jsonl(Path(prompts_path), required=("prompt_id",)):
        if row.get("group") is not None:
            mapping.setdefault(str(row["group"]), str(row.get("domain") or "all groups"))
    return mapping


# --------------------------------------------------------------------------- selections


def _matches(series: pd.Series, wanted: str | None) -> pd.Series:
    return blank(series) if wanted in (None, "") else series.astype(str) == wanted


def _select(frame: pd.DataFrame, metric: str, promptset: str | None, group: str | None):
    if frame.empty:
        return frame
    part = frame[
        (frame["metric"] == metric)
        & _matches(frame["promptset"], promptset)
        & _matches(frame["group"], group)
    ]
    return part.drop_duplicates("model").set_index("model")


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def metric_values(
    metrics: pd.DataFrame, metric: str, promptset: str | None = None, group: str | None = None
) -> pd.DataFrame:
    """One row per model with a finite value of ``metric``: columns ``value, lo, hi``
    (``lo``/``hi`` NaN without an interval). ``promptset``/``group`` None: blank."""
    part = _select(metrics, metric, promptset, group)
    out = pd.DataFrame(
        {
            "value": _number(part, "value"),
            "lo": _number(part, "ci_low"),
            "hi": _number(part, "ci_high"),
        },
        index=pd.Index(part.index if len(part) else [], name="model", dtype=object),
    )
    return out[np.isfinite(out["value"])]


def comparison_values(
    comparisons: pd.DataFrame, metric: str, promptset: str, group: str | None = None
) -> pd.DataFrame:
    """One row per model with a finite paired difference of ``metric`` to its parent:
    columns ``parent, value, parent_value, diff, lo, hi`` (``lo``/``hi`` the interval of
    ``diff``)."""
    part = _select(comparisons, metric, promptset, group)
    out = pd.DataFrame(
        {
            "parent": part["parent"] if len(part) else pd.Series(dtype=object),
            "value": _number(part, "value"),
            "parent_value": _number(part, "parent_value"),
            "diff": _number(part, "diff"),
            "lo": _number(part, "ci_low"),
            "hi": _number(part, "ci_high"),
        },
        index=pd.Index(part.index if len(part) else [], name="model", dtype=object),
    )
    return out[np.isfinite(out["diff"])]


def groups_of(frame: pd.DataFrame, metric: str, promptset: str) -> list[str]:
    """The non-blank groups that ``metric`` has rows for on ``promptset``, sorted."""
    if frame.empty:
        return []
    part = frame[(frame["metric"] == metric) & _matches(frame["promptset"], promptset)]
    return sorted(part.loc[~blank(part["group"]), "group"].astype(str).unique())


def errors(rows: pd.DataFrame, centre: str = "value") -> np.ndarray | None:
    """``[[below...], [above...]]`` for ``errorbar`` from ``lo``/``hi`` (0 where missing);
    None when no row has an interval."""
    lo, hi, mid = (
        rows["lo"].to_numpy(float),
        rows["hi"].to_numpy(float),
        rows[centre].to_numpy(float),
    )
    if not (np.isfinite(lo) & np.isfinite(hi)).any():
        return None
    below = np.where(np.isfinite(lo), np.clip(mid - lo, 0, None), 0.0)
    above = np.where(np.isfinite(hi), np.clip(hi - mid, 0, None), 0.0)
    return np.vstack([below, above])


def ordered(models: Sequence[str], order: Sequence[str]) -> list[str]:
    """``models`` in the display ``order`` (unknown ones last, in their given order)."""
    rank = {m: i for i, m in enumerate(order)}
    return sorted(dict.fromkeys(models), key=lambda m: rank.get(m, len(rank)))
