"""Toxicity and quality against the compression level, one line per method.

One row of panels per (family, parent) of the models that have levels
(pruning, quantization, distillation), so every line in a row is measured
against the same parent, drawn as a horizontal band (its value and
interval). A method applied to two parents (``rtn`` of the teacher, and of
a student) gets two rows. Levels that are not numbers (``2of4``, a named
layer choice) sit in a grey strip on the strong-compression side of the
axis, unconnected. Columns: expected maximum toxicity and toxicity
probability on the toxicity prompt set, and the held-out perplexity over the
parent's (log scale; the quality guard's limit dotted).

:func:`draw_level_grid` draws any list of :class:`Panel` this way, for
other figures to reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.data import FigureOptions, Tables, errors, metric_values
from compfair.plots.style import (
    LEVEL_FAMILIES,
    ModelStyle,
    finish,
    flag_note,
    legend_right,
    model_styles,
    new_figure,
    no_data,
    plain_log_axis,
    series_colour,
)
from compfair.tables.specs import METRIC_LABELS

#: Marker offset between the methods of a row, as a share of the gap between levels.
DODGE = 0.06


@dataclass(frozen=True)
class Panel:
    """One column of the grid: ``metric`` on ``promptset`` (None: a model-level row).

    ``metric`` ``"perplexity_ratio"`` reads ``models.csv`` instead of the metrics.
    """

    metric: str
    promptset: str | None
    title: str
    ylabel: str


@dataclass(frozen=True)
class LevelRow:
    """Models of one family made from one parent, and where their levels go on x."""

    family: str
    parent: str
    models: tuple[str, ...]
    x: Mapping[str, float]
    ticks: tuple[float, ...]
    tick_labels: tuple[str, ...]
    strip: tuple[float, float] | None
    xlim: tuple[float, float]
    step: float


def _axis(styles: Mapping[str, ModelStyle], models: Sequence[str], family: str):
    """Positions of the levels of ``models``: numbers as themselves, other labels after them."""
    _, smaller_is_more = LEVEL_FAMILIES.get(family, ("", False))
    numeric = {
        styles[m].level: styles[m].level_number
        for m in models
        if styles[m].level_number is not None
    }
    other = list(dict.fromkeys(styles[m].level for m in models if styles[m].level_number is None))
    values = sorted(set(numeric.values()))
    if values:
        gaps = np.diff(values)
        step = float(gaps.min()) if len(gaps) else (abs(values[0]) * 0.4 or 0.5)
        lo, hi = values[0], values[-1]
    else:
        step, lo, hi = 1.0, 0.0, -1.0
    sign = -1.0 if smaller_is_more and values else 1.0
    edge = (lo if sign < 0 else hi) if values else -1.0
    places = {label: edge + sign * step * (k + 1.2) for k, label in enumerate(other)}
    x = {m: numeric.get(styles[m].level, places.get(styles[m].level)) for m in models}
    ends = [*values, *places.values()]
    xlim = (min(ends) - 0.6 * step, max(ends) + 0.6 * step)
    if sign < 0:
        xlim = xlim[::-1]
    strip = None
    if other and values:
        inner = edge + sign * 0.6 * step
        outer = edge + sign * step * (len(other) + 0.8)
        strip = (min(inner, outer), max(inner, outer))
    labels = {v: lab for lab, v in numeric.items()}
    ticks = [*values, *places.values()]
    tick_labels = [*(labels[v] for v in values), *places]
    return x, tuple(ticks), tuple(tick_labels), strip, xlim, step


def level_rows(styles: Mapping[str, ModelStyle]) -> list[LevelRow]:
    """One :class:`LevelRow` per (family, parent) of models with a level, in display order."""
    groups: dict[tuple[str, str], list[str]] = {}
    for model, style in styles.items():
        if style.family in LEVEL_FAMILIES and style.level and style.parent:
            groups.setdefault((style.family, style.parent), []).append(model)
    rows = []
    for (family, parent), models in groups.items():
        x, ticks, tick_labels, strip, xlim, step = _axis(styles, models, family)
        rows.append(
            LevelRow(family, parent, tuple(models), x, ticks, tick_labels, strip, xlim, step)
        )
    return rows


def _values(tables: Tables, panel: Panel):
    if panel.metric == "perplexity_ratio":
        models = tables.models.set_index("model")
        ratio = models.get("perplexity_ratio")
        if ratio is None:
            return metric_values(tables.metrics.iloc[:0], "none")
        frame = ratio.astype(float).to_frame("value").assign(lo=np.nan, hi=np.nan)
        return frame[np.isfinite(frame["value"])]
    return metric_values(tables.metrics, panel.metric, panel.promptset)


def _parent_band(ax: Axes, panel: Panel, data, row: LevelRow, styles, options) -> None:
    colour = styles[row.parent].colour if row.parent in styles else "0.3"
    if panel.metric == "perplexity_ratio":
        ax.axhline(1.0, color=colour, ls="--", lw=1.1, label=f"{row.parent} (parent)")
        if options.max_perplexity_ratio:
            ax.axhline(
                options.max_perplexity_ratio,
                color="#b00000",
                ls=":",
                lw=1.2,
                label=f"flag limit (× {options.max_perplexity_ratio:g})",
            )
        return
    if row.parent not in data.index:
        return
    parent = data.loc[row.parent]
    ax.axhline(parent["value"], color=colour, ls="--", lw=1.1, label=f"{row.parent} (parent)")
    if np.isfinite(parent["lo"]) and np.isfinite(parent["hi"]):
        ax.axhspan(
            parent["lo"],
            parent["hi"],
            color=colour,
            alpha=0.13,
            lw=0,
            label=f"{row.parent} {options.ci}",
        )


def _draw_series(ax: Axes, data, row: LevelRow, styles: Mapping[str, ModelStyle]) -> list[str]:
    """Lines and markers of every method of ``row``; returns the models drawn."""
    series = list(dict.fromkeys(styles[m].series for m in row.models))
    drawn = []
    for k, name in enumerate(series):
        members = [m for m in row.models if styles[m].series == name and m in data.index]
        members.sort(key=lambda m: row.x[m])
        if not members:
            continue
        shift = (k - (len(series) - 1) / 2) * DODGE * row.step
        part = data.loc[members]
        xs = np.array([row.x[m] for m in members]) + shift
        numeric = np.array([styles[m].level_number is not None for m in members])
        colour = series_colour(styles, name)
        if numeric.any():
            line = ax.plot(
                xs[numeric], part["value"].to_numpy()[numeric], "-", color=colour, lw=1.6
            )
            line[0].set_gid(f"series:{name}")
        # the legend's entry: the method's line with its family's marker
        proxy = {
            **styles[members[-1]].marker_kw(6.5),
            "color": colour,
            "mfc": colour,
            "mec": colour,
        }
        ax.plot([], [], "-" if numeric.any() else "none", lw=1.6, label=name, **proxy)
        err = errors(part)
        for i, model in enumerate(members):
            style = styles[model]
            label = style.label if style.flagged else f"_{model}"
            bars = ax.errorbar(
                [xs[i]],
                [part.at[model, "value"]],
                yerr=None if err is None else err[:, i : i + 1],
                ls="none",
                capsize=2.5,
                elinewidth=1.0,
                zorder=4,
                label=label,
                **style.marker_kw(6.5),
            )
            bars.lines[0].set_gid(model)
            drawn.append(model)
    return drawn


def _draw_panel(ax: Axes, panel: Panel, data, row: LevelRow, styles, options) -> list[str]:
    ax.set_title(f"{panel.title}\n{row.family} of {row.parent}", fontsize=9.5)
    shown = [m for m in row.models if m in data.index]
    if not shown:
        no_data(ax, f"{panel.metric}" + (f" on {panel.promptset}" if panel.promptset else ""))
        return []
    _parent_band(ax, panel, data, row, styles, options)
    drawn = _draw_series(ax, data, row, styles)
    if row.strip is not None:
        ax.axvspan(*row.strip, color="0.93", zorder=0)
    ax.set_xlim(*row.xlim)
    ax.set_xticks(list(row.ticks))
    ax.set_xticklabels(list(row.tick_labels), fontsize=8, rotation=30 if len(row.ticks) > 6 else 0)
    ax.set_xlabel(LEVEL_FAMILIES[row.family][0], fontsize=8)
    ax.set_ylabel(panel.ylabel, fontsize=8.5)
    if panel.metric == "perplexity_ratio":
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return drawn


def draw_level_grid(
    tables: Tables, options: FigureOptions, panels: Sequence[Panel], title: str
) -> Figure:
    """A grid of ``panels`` (columns) x (family, parent) rows; "no data" without leveled models."""
    styles = model_styles(tables)
    rows = level_rows(styles)
    if not rows:
        fig = new_figure(7, 3)
        no_data(
            fig.add_subplot(), "no pruned, quantized or distilled model with a level in this study"
        )
        return finish(fig, title)
    fig = new_figure(4.1 * len(panels) + 1.8, 3.3 * len(rows) + 0.9)
    axes = fig.subplots(len(rows), len(panels), squeeze=False)
    drawn: list[str] = []
    for r, row in enumerate(rows):
        for c, panel in enumerate(panels):
            drawn += _draw_panel(axes[r][c], panel, _values(tables, panel), row, styles, options)
        legend_right(axes[r][-1], axes[r])
    absent = [f for f in LEVEL_FAMILIES if f not in {row.family for row in rows}]
    if absent:
        title += f"\n(not in this study: {', '.join(absent)})"
    return finish(fig, title, note=flag_note(styles, drawn))


PANELS = tuple(
    (metric, *METRIC_LABELS[metric]) for metric in ("expected_max_toxicity", "toxicity_probability")
)


@register_figure("toxicity_by_level", category="Toxicity", order=10)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """EMT, toxicity probability and the perplexity ratio against the level, per method."""
    panels = [
        Panel(metric, options.toxicity_promptset, f"{title} ({options.toxicity_promptset})", ylabel)
        for metric, title, ylabel in PANELS
    ]
    panels.append(
        Panel("perplexity_ratio", None, "Held-out perplexity / parent's", "ratio (log scale)")
    )
    title = (
        f"Toxicity and quality against the compression level "
        f"(markers: mean, bars: {options.ci}; dashed line and band: the parent)"
    )
    return draw_level_grid(tables, options, panels, title)
