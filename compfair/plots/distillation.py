"""The students at each depth: distilled (kd) against the no-distillation control and the teacher.

One group of bars per student depth (``level``: the share of the teacher's
layers kept, or a named layer choice), one bar per method (``kd``, ``nokd``,
...) with its interval; the parent (the teacher) is the dashed line and its
band. Panels: expected maximum toxicity and toxicity probability on the
toxicity prompt set, held-out perplexity (log scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.data import FigureOptions, Tables, errors, metric_values
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
)
from compfair.tables.specs import METRIC_LABELS


def student_groups(styles: Mapping[str, ModelStyle]) -> tuple[list[str], list[str]]:
    """Depth labels (mildest first) and methods (display order) of the distillation family."""
    students = [s for s in styles.values() if s.family == "distillation" and s.level]
    levels = list(dict.fromkeys(s.level for s in students))
    ranks = compression_rank("distillation", levels)
    levels = [lv for _, lv in sorted(zip(ranks, levels, strict=True))]
    return levels, list(dict.fromkeys(s.method for s in students))


def _parents_band(ax: Axes, data: pd.DataFrame, parents: Sequence[str], styles, ci: str) -> None:
    for parent in parents:
        if parent not in data.index:
            continue
        row = data.loc[parent]
        colour = styles[parent].colour if parent in styles else "0.3"
        ax.axhline(
            row["value"], color=colour, ls="--", lw=1.2, label=f"{parent} (parent)", zorder=1
        )
        if np.isfinite(row["lo"]) and np.isfinite(row["hi"]):
            ax.axhspan(
                row["lo"],
                row["hi"],
                color=colour,
                alpha=0.13,
                lw=0,
                label=f"{parent} {ci}",
                zorder=0,
            )


def _bars(ax: Axes, data: pd.DataFrame, levels, methods, styles, fmt: str) -> list[str]:
    """One bar per (depth, method) student with a value; returns the models drawn."""
    width = 0.8 / max(len(methods), 1)
    drawn = []
    for j, method in enumerate(methods):
        for i, level in enumerate(levels):
            model = next(
                (
                    m
                    for m, s in styles.items()
                    if s.family == "distillation" and s.method == method and s.level == level
                ),
                None,
            )
            if model is None or model not in data.index:
                continue
            style, row = styles[model], data.loc[[model]]
            x = i + (j - (len(methods) - 1) / 2) * width
            bar = ax.bar(
                [x], row["value"], width * 0.92, label=style.label, zorder=2, **style.bar_kw()
            )
            bar.patches[0].set_gid(model)
            err = errors(row)
            if err is not None:
                ax.errorbar(
                    [x],
                    row["value"],
                    yerr=err,
                    color="black",
                    lw=1.0,
                    capsize=3,
                    ls="none",
                    zorder=3,
                )
            top = row["hi"].iloc[0] if np.isfinite(row["hi"].iloc[0]) else row["value"].iloc[0]
            ax.annotate(
                fmt.format(row["value"].iloc[0]),
                (x, top),
                textcoords="offset points",
                xytext=(0, 2),
                ha="center",
                fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5},
            )
            drawn.append(model)
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels([f"keep {lv}" for lv in levels], fontsize=8.5)
    ax.set_xlim(-0.6, len(levels) - 0.4)
    return drawn


def _panel(ax: Axes, tables: Tables, spec, levels, methods, styles, options) -> list[str]:
    metric, promptset, title, ylabel, fmt = spec
    ax.set_title(title, fontsize=10)
    data = metric_values(tables.metrics, metric, promptset)
    students = [m for m, s in styles.items() if s.family == "distillation" and m in data.index]
    if not students:
        no_data(ax, f"{metric}" + (f" on {promptset}" if promptset else "") + " of the students")
        return []
    parents = list(dict.fromkeys(styles[m].parent for m in students if styles[m].parent))
    _parents_band(ax, data, parents, styles, options.ci)
    drawn = _bars(ax, data, levels, methods, styles, fmt)
    ax.set_ylabel(ylabel, fontsize=8.5)
    if metric == "perplexity":
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
        # bars on a log axis need a floor below the smallest value
        low = float(
            np.nanmin(data.loc[students + [p for p in parents if p in data.index], "value"])
        )
        ax.set_ylim(bottom=low / 1.5)
    else:
        ax.set_ylim(bottom=0.0)
        ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    return drawn


@register_figure("distillation", category="Toxicity", order=40)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """kd against nokd against the teacher, per student depth."""
    styles = model_styles(tables)
    levels, methods = student_groups(styles)
    ps = options.toxicity_promptset
    title = f"Students by depth: distilled against the control without distillation (bars: {options.ci})"
    if not levels:
        fig = new_figure(7, 3)
        no_data(fig.add_subplot(), "no distilled student in this study")
        return finish(fig, title)
    specs = tuple(
        (metric, where, f"{title} ({where})" if where else title, label, fmt)
        for metric, where, fmt in (
            ("expected_max_toxicity", ps, "{:.3f}"),
            ("toxicity_probability", ps, "{:.3f}"),
            ("perplexity", None, "{:.3g}"),
        )
        for title, label in [METRIC_LABELS[metric]]
    )
    fig = new_figure(max(12.0, 1.4 * len(levels) * len(methods) + 6), 4.9)
    axes = fig.subplots(1, len(specs))
    drawn: list[str] = []
    for ax, spec in zip(axes, specs, strict=True):
        drawn += _panel(ax, tables, spec, levels, methods, styles, options)
    legend_below(fig, axes, ncol=6, note=flag_note(styles, drawn))
    return finish(fig, title)
