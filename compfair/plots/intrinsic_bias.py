"""Intrinsic bias benchmarks per model, each beside its parent.

One row per model (display order, bands per family), one panel per
benchmark: the share of CrowS-Pairs pairs where the model prefers the
stereotypical sentence, and StereoSet's stereotype score (SS), both 50 for
no preference. A marker is the model's value with its bootstrap interval over
the benchmark's items; the grey tick in the same row is its parent's value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.contrasts import family_blocks
from compfair.plots.data import FigureOptions, Tables, metric_values
from compfair.plots.style import finish, flag_note, legend_below, model_styles, new_figure, no_data

#: (metric, prompt set, panel title) of each benchmark.
BENCHMARKS = (
    ("crows_pairs_stereo_share", "crows_pairs", "CrowS-Pairs: stereotype preferred"),
    ("stereoset_ss", "stereoset", "StereoSet stereotype score (SS)"),
)


def _percent(data: pd.DataFrame) -> bool:
    """The benchmarks are written in percent; a table in shares (0..1) is told by its values."""
    return data.empty or float(data["value"].abs().max()) > 1.5


def _panel(ax: Axes, data: pd.DataFrame, models: list[str], styles, what: str) -> list[str]:
    if data.empty:
        no_data(ax, f"no {what} rows")
        return []
    drawn = []
    for y, model in enumerate(models):
        if model not in data.index:
            continue
        row, style = data.loc[model], styles.get(model)
        parent = style.parent if style is not None else None
        if parent in data.index:
            tick = ax.plot(
                [data.at[parent, "value"]],
                [y],
                "|",
                color="0.45",
                ms=11,
                mew=2,
                zorder=2,
                label="the parent's value",
            )
            tick[0].set_gid(f"parent:{model}")
        err = None
        if np.isfinite(row["lo"]) and np.isfinite(row["hi"]):
            err = [[max(row["value"] - row["lo"], 0.0)], [max(row["hi"] - row["value"], 0.0)]]
        kw = style.marker_kw(6.5) if style is not None else {"marker": "o", "color": "0.4"}
        bars = ax.errorbar(
            [row["value"]], [y], xerr=err, ls="none", capsize=2, elinewidth=1.0, zorder=3, **kw
        )
        bars.lines[0].set_gid(model)
        drawn.append(model)
    ideal = 50.0 if _percent(data) else 0.5
    ax.axvline(ideal, color="black", ls=":", lw=0.9)
    ax.set_xlabel(
        f"{'%' if _percent(data) else 'share'} ({ideal:g}: no stereotype preference)", fontsize=8.5
    )
    for k, (_, start, stop) in enumerate(family_blocks(models, styles)):
        if k % 2:
            ax.axhspan(start - 0.5, stop - 0.5, color="0.94", zorder=0, lw=0)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(labelsize=8)
    return drawn


@register_figure("intrinsic_bias", category="Bias", order=65)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """CrowS-Pairs and StereoSet per model, with intervals and the parent's value."""
    styles = model_styles(tables)
    values = {metric: metric_values(tables.metrics, metric, ps) for metric, ps, _ in BENCHMARKS}
    found = set().union(*(set(v.index) for v in values.values()))
    models = [m for m in styles if m in found] + sorted(found - set(styles))
    title = (
        f"Intrinsic bias benchmarks (markers: the model, bars: {options.ci}; grey tick: its parent)"
    )
    fig = new_figure(11.0, 0.28 * max(len(models), 3) + 2.0)
    axes = fig.subplots(1, len(BENCHMARKS), sharey=True)
    drawn: list[str] = []
    for ax, (metric, _, panel_title) in zip(axes, BENCHMARKS, strict=True):
        ax.set_title(panel_title, fontsize=10)
        drawn += _panel(ax, values[metric], models, styles, metric)
    if models:
        axes[0].set_yticks(range(len(models)))
        axes[0].set_yticklabels([styles[m].label if m in styles else m for m in models], fontsize=8)
        axes[0].set_ylim(len(models) - 0.5, -0.5)
    legend_below(fig, axes, note=flag_note(styles, drawn))
    return finish(fig, title)
