"""Each model's group means side by side: the sentiment gap of every domain, with intervals.

One panel per domain of the bias prompt set, one row per model (display
order, bands per family). In a row each group of the domain is a marker at
its mean VADER compound, with its bootstrap interval over the prompts; the
grey bar behind them spans the lowest to the highest group mean (the
domain's ``sentiment_gap``). A row whose bar is longer than its parent's is a
model that treats the groups more unequally.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.contrasts import family_blocks
from compfair.plots.data import FigureOptions, Tables, groups_of, metric_values
from compfair.plots.style import (
    ModelStyle,
    finish,
    flag_note,
    legend_entries,
    model_styles,
    new_figure,
    no_data,
    pretty,
)

GROUP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
#: Vertical room the groups of one row share (a row is 1).
ROW_SPAN = 0.5


def _domains(groups: list[str], group_domains: Mapping[str, str]) -> dict[str, list[str]]:
    by_domain: dict[str, list[str]] = {}
    for group in groups:
        by_domain.setdefault(group_domains.get(group, "all groups"), []).append(group)
    return dict(sorted(by_domain.items()))


def _row(
    ax: Axes, y: int, model: str, groups: list[str], per_group, style: ModelStyle | None
) -> bool:
    """Gap bar and group markers of one model; False when it has no value in this domain."""
    means = {g: per_group[g].loc[model] for g in groups if model in per_group[g].index}
    if not means:
        return False
    values = [row["value"] for row in means.values()]
    ax.plot(
        [min(values), max(values)], [y, y], "-", color="0.75", lw=5, solid_capstyle="butt", zorder=1
    )
    colours = matplotlib.colormaps["tab10"]
    step = ROW_SPAN / max(len(groups), 1)
    for k, group in enumerate(groups):
        if group not in means:
            continue
        row = means[group]
        err = None
        if np.isfinite(row["lo"]) and np.isfinite(row["hi"]):
            err = [[max(row["value"] - row["lo"], 0.0)], [max(row["hi"] - row["value"], 0.0)]]
        colour = colours(k % 10)
        hollow = style is not None and style.flagged
        bars = ax.errorbar(
            [row["value"]],
            [y + (k - (len(groups) - 1) / 2) * step],
            xerr=err,
            ls="none",
            marker=GROUP_MARKERS[k % len(GROUP_MARKERS)],
            ms=5,
            color=colour,
            mfc="none" if hollow else colour,
            mec=colour,
            elinewidth=0.8,
            alpha=0.9,
            label=pretty(group),
            zorder=3,
        )
        bars.lines[0].set_gid(f"{model}|{group}")
    return True


def _panel(ax: Axes, domain: str, groups: list[str], per_group, models, styles) -> list[str]:
    drawn = [m for y, m in enumerate(models) if _row(ax, y, m, groups, per_group, styles.get(m))]
    for k, (_, start, stop) in enumerate(family_blocks(models, styles)):
        if k % 2:
            ax.axhspan(start - 0.5, stop - 0.5, color="0.94", zorder=0, lw=0)
    ax.axvline(0.0, color="black", lw=0.8, zorder=1)
    ax.set_ylim(len(models) - 0.5, -0.5)
    ax.set_title(pretty(domain), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(labelsize=8)
    entries = legend_entries([ax])
    ax.legend(
        list(entries.values()),
        list(entries),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.07),
        ncol=min(3, len(groups)),
        fontsize=7.5,
        frameon=False,
        handletextpad=0.2,
        columnspacing=0.8,
    )
    return drawn


@register_figure("sentiment_by_group", category="Bias", order=60)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """Per-group mean VADER compound of every model, a panel per domain."""
    styles = model_styles(tables)
    ps = options.bias_promptset
    groups = groups_of(tables.metrics, "sentiment_mean", ps)
    title = (
        f"Sentiment of the continuations of the {ps} prompts by group: markers the group means "
        f"(bars: {options.ci}), grey bar the gap"
    )
    if not groups:
        fig = new_figure(7, 3)
        no_data(fig.add_subplot(), f"no per-group sentiment_mean on {ps}")
        return finish(fig, title)
    per_group = {g: metric_values(tables.metrics, "sentiment_mean", ps, g) for g in groups}
    found = set().union(*(set(d.index) for d in per_group.values()))
    models = [m for m in styles if m in found] + sorted(found - set(styles))
    domains = _domains(groups, options.group_domains)
    fig = new_figure(2.6 * len(domains) + 2.2, 0.26 * len(models) + 2.6)
    axes = fig.subplots(1, len(domains), sharex=True, sharey=True, squeeze=False)[0]
    drawn: list[str] = []
    for ax, (domain, members) in zip(axes, domains.items(), strict=True):
        drawn += _panel(ax, domain, members, per_group, models, styles)
    axes[0].set_yticks(range(len(models)))
    axes[0].set_yticklabels([styles[m].label if m in styles else m for m in models], fontsize=8)
    for tick, model in zip(axes[0].get_yticklabels(), models, strict=True):
        if model in styles:
            tick.set_color(tuple(0.75 * c for c in styles[model].colour[:3]))
    fig.supxlabel(
        "mean VADER compound (−1 … 1; > 0: positive)"
        + ("\n" + flag_note(styles, drawn) if flag_note(styles, drawn) else ""),
        fontsize=8.5,
    )
    return finish(fig, title)
