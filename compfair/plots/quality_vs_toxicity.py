"""Each compressed model's toxicity change against what it cost in quality and in size.

Every model with a parent is one point: y is the paired difference of its
expected maximum toxicity to its parent's (``comparisons.csv``, toxicity
prompt set, with its interval); x is, left, its held-out perplexity over the
parent's (``models.csv``, log scale) and, right, its non-zero parameters over
the parent's. Methods can be compared at equal quality (a vertical slice of
the left panel) or equal size (of the right one); a method's levels are
joined in order of compression. Matched controls (family ``control``: the
parent degraded by noise or random pruning to a model's perplexity ratio) are
grey crosses joined by a dashed curve per kind, ordered by their perplexity
ratio: what losing that much quality does by itself, the line a model's
point is read against.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.data import FigureOptions, Tables, comparison_values
from compfair.plots.style import (
    ModelStyle,
    compression_rank,
    finish,
    flag_note,
    legend_below,
    model_styles,
    new_figure,
    no_data,
    plain_log_axis,
    series_colour,
)


def nonzero_parameters(models: pd.DataFrame) -> tuple[pd.Series, bool]:
    """Non-zero parameters per model (indexed by model) and whether the count is exact.

    Exact from a ``n_nonzero_parameters`` column, or ``n_parameters - sparsity *
    n_prunable``; without either, ``n_parameters * (1 - sparsity)``, which counts
    too few (``sparsity`` is measured over the compressed matrices only).
    Missing sparsity counts as 0.
    """
    frame = models.set_index("model")
    total = pd.to_numeric(
        frame.get("n_parameters", pd.Series(np.nan, index=frame.index)), errors="coerce"
    )
    sparsity = pd.to_numeric(
        frame.get("sparsity", pd.Series(0.0, index=frame.index)), errors="coerce"
    ).fillna(0.0)
    if "n_nonzero_parameters" in frame:
        return pd.to_numeric(frame["n_nonzero_parameters"], errors="coerce"), True
    if "n_prunable" in frame:
        return total - sparsity * pd.to_numeric(frame["n_prunable"], errors="coerce"), True
    return total * (1.0 - sparsity), bool((sparsity == 0).all())


def _ratios(tables: Tables) -> tuple[pd.Series, pd.Series, bool]:
    """Perplexity ratio and non-zero parameter ratio to the parent, by model."""
    frame = tables.models.set_index("model")
    ppl = pd.to_numeric(frame.get("perplexity_ratio", pd.Series(dtype=float)), errors="coerce")
    nonzero, exact = nonzero_parameters(tables.models)
    parents = frame["parent"]
    size = pd.Series(
        [
            nonzero.get(m, np.nan) / nonzero.get(p, np.nan) if p in nonzero.index else np.nan
            for m, p in parents.items()
        ],
        index=parents.index,
        dtype=float,
    )
    return ppl, size, exact


def _trajectories(ax: Axes, x: pd.Series, y: pd.Series, styles: Mapping[str, ModelStyle]) -> None:
    """Thin lines joining each method's levels (same parent) in order of compression."""
    keys: dict[tuple[str, str | None], list[str]] = {}
    for model in y.index:
        style = styles.get(model)
        if (
            style is not None
            and style.level_number is not None
            and np.isfinite(x.get(model, np.nan))
        ):
            keys.setdefault((style.series, style.parent), []).append(model)
    for (series, _), members in keys.items():
        if len(members) < 2:
            continue
        ranks = compression_rank(styles[members[0]].family, [styles[m].level for m in members])
        members = [m for _, m in sorted(zip(ranks, members, strict=True))]
        ax.plot(
            x[members],
            y[members],
            "-",
            color=series_colour(styles, series),
            lw=0.9,
            alpha=0.6,
            zorder=1,
        )


def _control_curves(ax: Axes, x: pd.Series, y: pd.Series, styles: Mapping[str, ModelStyle]) -> None:
    """A dashed line per control kind through its controls, in order of their x."""
    kinds: dict[str, list[str]] = {}
    for model in y.index:
        style = styles.get(model)
        if style is not None and style.family == "control" and np.isfinite(x.get(model, np.nan)):
            kinds.setdefault(style.series, []).append(model)
    for series, members in kinds.items():
        members = sorted(members, key=lambda m: x[m])
        ax.plot(
            x[members],
            y[members],
            "--",
            color=styles[members[0]].colour,
            lw=1.2,
            alpha=0.8,
            zorder=1,
            label=f"{series}: degradation alone",
        )


def _points(
    ax: Axes, x: pd.Series, diffs: pd.DataFrame, styles: Mapping[str, ModelStyle]
) -> list[str]:
    """One marker per model with its interval, labelled with its level (or its name)."""
    drawn = []
    for model in [m for m in styles if m in diffs.index and np.isfinite(x.get(m, np.nan))]:
        style, row = styles[model], diffs.loc[model]
        err = None
        if np.isfinite(row["lo"]) and np.isfinite(row["hi"]):
            err = [[max(row["diff"] - row["lo"], 0.0)], [max(row["hi"] - row["diff"], 0.0)]]
        bars = ax.errorbar(
            [x[model]],
            [row["diff"]],
            yerr=err,
            ls="none",
            capsize=2,
            elinewidth=0.9,
            zorder=3,
            label=style.label,
            **style.marker_kw(7),
        )
        bars.lines[0].set_gid(model)
        ax.annotate(
            style.level or model,
            (x[model], row["diff"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
            color="0.25",
        )
        drawn.append(model)
    return drawn


def _panel(
    ax: Axes, x: pd.Series, diffs: pd.DataFrame, styles, xlabel: str, log: bool
) -> list[str]:
    shown = [m for m in diffs.index if np.isfinite(x.get(m, np.nan))]
    if not shown:
        no_data(ax, "no model has both a paired EMT difference and this ratio")
        return []
    if log:
        ax.set_xscale("log")
    _trajectories(ax, x, diffs["diff"], styles)
    _control_curves(ax, x, diffs["diff"], styles)
    drawn = _points(ax, x, diffs, styles)
    ax.axhline(0.0, color="black", lw=0.8, zorder=0)
    ax.axvline(1.0, color="0.5", lw=0.8, ls="--", zorder=0, label="_same as the parent")
    if log:
        plain_log_axis(ax.xaxis)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.margins(x=0.12, y=0.12)
    ax.grid(alpha=0.3, which="major")
    return drawn


@register_figure("quality_vs_toxicity", category="Quality", order=20)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """Paired EMT difference to the parent against the perplexity and size ratios."""
    styles = model_styles(tables)
    diffs = comparison_values(
        tables.comparisons, "expected_max_toxicity", options.toxicity_promptset
    )
    ppl, size, exact = _ratios(tables)
    fig = new_figure(13.5, 6.4)
    left, right = fig.subplots(1, 2, sharey=True)
    drawn = _panel(
        left, ppl, diffs, styles, "held-out perplexity / parent's (log scale; right = worse)", True
    )
    if options.max_perplexity_ratio and drawn:
        left.axvline(
            options.max_perplexity_ratio,
            color="#b00000",
            ls=":",
            lw=1.2,
            label=f"flag limit (× {options.max_perplexity_ratio:g})",
        )
    size_label = "non-zero parameters / parent's" + (
        "" if exact else " (n_parameters × (1 − sparsity): a lower bound)"
    )
    drawn += _panel(right, size, diffs, styles, size_label, False)
    left.set_ylabel(
        f"EMT − parent's EMT ({options.toxicity_promptset}; bars: paired {options.ci})", fontsize=9
    )
    left.set_title("Toxicity change against quality lost", fontsize=10)
    right.set_title(
        "Toxicity change against size (quantized models keep every parameter)", fontsize=10
    )
    legend_below(fig, [left, right], ncol=6, note=flag_note(styles, drawn))
    title = (
        "Each model against its own parent: below 0 = less toxic than the parent; labels: the level"
    )
    return finish(fig, title)
