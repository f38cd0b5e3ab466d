"""``matched_controls.csv``: every model against its quality-matched controls.

A matched control is the model's parent degraded until its held-out
perplexity ratio is the model's (:mod:`compfair.compression.controls`). The
model minus the control is paired over the prompts (items) and seeds both
have, exactly as a model is compared with its parent; with several draws of
one kind of control, :func:`pool_draws` adds a row over all of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from compfair.metrics import Bootstrap
from compfair.tables.collect import Collected, add_comparison_rows
from compfair.tables.intrinsic import add_item_comparisons
from compfair.tables.prompts import PerPrompt
from compfair.tables.rows import MatchedRow, adjust_p_values, fields_of, to_frame
from compfair.variants import control_name


def _mean_ratio(evals: Mapping, model: str, parent: str | None) -> float:
    """The model's held-out perplexity over its parent's, averaged over the seeds both have."""
    ratios = [
        e["perplexity"] / evals[(s, parent)]["perplexity"]
        for (s, m), e in sorted(evals.items())
        if m == model and (s, parent) in evals
    ]
    return float(np.mean(ratios)) if ratios else math.nan


def _control_rows(
    per_prompt: PerPrompt,
    item_files: Mapping[tuple[int, str], Path],
    control: Mapping,
    evals: Mapping,
    boot: Bootstrap,
) -> list[MatchedRow]:
    """The rows of one control (variant record ``control``) against the model it matches."""
    model, name = control["matches"], control["model"]
    rows = Collected()
    add_comparison_rows(per_prompt, {model: name}, boot, rows)
    add_item_comparisons(item_files, {model: name}, boot, rows)
    ratio = _mean_ratio(evals, model, control["parent"])
    control_ratio = _mean_ratio(evals, name, control["parent"])
    return [
        MatchedRow(
            model=model,
            control=name,
            **fields_of(key),
            value=row.value,
            control_value=row.parent_value,
            diff=row.diff,
            ci_low=row.ci_low,
            ci_high=row.ci_high,
            p_value=row.p_value,
            p_adjusted=math.nan,
            n_units=row.n_units,
            perplexity_ratio=ratio,
            control_perplexity_ratio=control_ratio,
            ci_note=row.ci_note,
            draws=1,
        )
        for key, row in rows.paired.get(model, {}).items()
    ]


def matched_controls_table(
    per_prompt: PerPrompt,
    item_files: Mapping[tuple[int, str], Path],
    variants: list[dict],
    evals: Mapping,
    boot: Bootstrap,
) -> pd.DataFrame:
    """One :class:`~compfair.tables.rows.MatchedRow` per (model, control, prompt set, group,
    metric): the model minus its matched control, paired over the prompts (items) and seeds
    both have (``draws`` 1); then, for a model with several draws of one kind, a row over all
    of them (:func:`pool_draws`, ``control`` ``<kind>-match-<model> (k draws)``, ``draws``
    k). p_adjusted is Benjamini-Hochberg per (prompt set, metric) over the table."""
    rows = [
        row
        for v in variants
        if v.get("matches")
        for row in _control_rows(per_prompt, item_files, v, evals, boot)
    ]
    table = to_frame(rows, MatchedRow)
    kinds = {v["model"]: v["method"] for v in variants if v.get("matches")}
    table = pd.concat([table, pool_draws(table, kinds, boot.confidence)], ignore_index=True)
    if not table.empty:
        table["n_units"] = table["n_units"].astype(int)
        table["draws"] = table["draws"].astype(int)
    return adjust_p_values(table)


def _pooled_interval(
    diffs: np.ndarray, within: float, n_units: int, confidence: float
) -> tuple[float, float, float]:
    """``(low, high, p)`` of the mean of k draws' differences (NaN without a within part)."""
    k = len(diffs)
    between = float(np.var(diffs, ddof=1)) * (1 + 1 / k)
    if not (math.isfinite(within) and n_units > 1):
        return math.nan, math.nan, math.nan
    se = math.sqrt(within + between)
    df = (within + between) ** 2 / (within**2 / (n_units - 1) + between**2 / (k - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    low, high = float(diffs.mean() - half), float(diffs.mean() + half)
    p = float(2 * stats.t.sf(abs(diffs.mean()) / se, df)) if se > 0 else math.nan
    return low, high, p


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
    keys = ["promptset", "group", "metric"]
    work = table.assign(kind=table["control"].map(kinds))
    z = stats.norm.ppf(0.5 + confidence / 2)
    rows = []
    for (model, kind, *key), part in work.groupby(["model", "kind", *keys], sort=False):
        k = len(part)
        if k < 2:
            continue
        diffs = part["diff"].to_numpy(float)
        within = float(np.mean(((part["ci_high"] - part["ci_low"]) / (2 * z)) ** 2))
        n_units = int(part["n_units"].min())
        low, high, p = _pooled_interval(diffs, within, n_units, confidence)
        first = part.iloc[0]
        rows.append(
            MatchedRow(
                model=model,
                control=f"{control_name(kind, model)} ({k} draws)",
                **dict(zip(keys, key, strict=True)),
                value=first["value"],
                control_value=float(part["control_value"].mean()),
                diff=float(diffs.mean()),
                ci_low=low,
                ci_high=high,
                p_value=p,
                p_adjusted=math.nan,
                n_units=n_units,
                perplexity_ratio=first["perplexity_ratio"],
                control_perplexity_ratio=float(part["control_perplexity_ratio"].mean()),
                ci_note="" if math.isfinite(low) else first["ci_note"],
                draws=k,
            )
        )
    return to_frame(rows, MatchedRow)
