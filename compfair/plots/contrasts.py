"""A forest plot of every paired contrast on the toxicity prompt set.

One row per (parent -> model) row of ``comparisons.csv``, in display order
and grouped by family: base -> teacher (what fine-tuning did), teacher ->
each student and each compressed model, a student -> its quantized copy,
gpt2 -> distilgpt2. Columns: the difference in expected maximum toxicity
and in toxicity probability, each with its paired interval; the line at 0 is
"no change".
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
from compfair.plots.style import ModelStyle, finish, flag_note, model_styles, new_figure, no_data
from compfair.tables.specs import METRIC_LABELS

METRICS = tuple(
    (metric, METRIC_LABELS[metric][0])
    for metric in ("expected_max_toxicity", "toxicity_probability")
)


def contrast_rows(tables: Tables, promptset: str, styles: Mapping[str, ModelStyle]) -> list[str]:
    """The models with a paired difference of any :data:`METRICS` on ``promptset``,
    in display order (family blocks follow from it)."""
    found = set()
    for metric, _ in METRICS:
        found |= set(comparison_values(tables.comparisons, metric, promptset).index)
    return [m for m in styles if m in found] + sorted(found - set(styles))


def _row_label(model: str, parent: object, style: ModelStyle | None) -> str:
    flagged = f" {style.label.split(' ', 1)[1]}" if style is not None and style.flagged else ""
    return f"{parent} → {model}{flagged}"


def family_blocks(rows: list[str], styles: Mapping[str, ModelStyle]) -> list[tuple[str, int, int]]:
    """(family, first row, last row + 1) of each run of one family in ``rows``."""
    families = [styles[m].family if m in styles else "other" for m in rows]
    blocks, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or families[i] != families[start]:
            blocks.append((families[start], start, i))
            start = i
    return blocks


def _shade_blocks(ax: Axes, blocks: list[tuple[str, int, int]], names: bool) -> None:
    """A light band behind every other family block; the family's name at the right."""
    for k, (family, start, stop) in enumerate(blocks):
        if k % 2:
            ax.axhspan(start - 0.5, stop - 0.5, color="0.93", zorder=0, lw=0)
        if names:
            ax.text(
                1.02,
                (start + stop - 1) / 2,
                family,
                transform=ax.get_yaxis_transform(),
                ha="left",
                va="center",
                fontsize=8,
                color="0.35",
            )


def _draw_metric(ax: Axes, data: pd.DataFrame, rows: list[str], styles) -> None:
    for y, model in enumerate(rows):
        if model not in data.index:
            ax.text(0.0, y, "n/a", ha="center", va="center", fontsize=7, color="0.5")
            continue
        row, style = data.loc[model], styles.get(model)
        err = None
        if np.isfinite(row["lo"]) and np.isfinite(row["hi"]):
            err = [[max(row["diff"] - row["lo"], 0.0)], [max(row["hi"] - row["diff"], 0.0)]]
        kw = style.marker_kw(6.5) if style is not None else {"marker": "o", "color": "0.4"}
        bars = ax.errorbar(
            [row["diff"]], [y], xerr=err, ls="none", capsize=2.5, elinewidth=1.1, zorder=3, **kw
        )
        bars.lines[0].set_gid(model)
    ax.axvline(0.0, color="black", lw=0.9, zorder=1)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.1)


@register_figure("contrasts", category="Toxicity", order=30)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """Paired differences (model − parent) of EMT and toxicity probability, one row a contrast."""
    styles = model_styles(tables)
    promptset = options.toxicity_promptset
    rows = contrast_rows(tables, promptset, styles)
    title = (
        f"Each model against its parent on {promptset} (model − parent; bars: paired {options.ci})"
    )
    if not rows:
        fig = new_figure(7, 3)
        no_data(fig.add_subplot(), f"no paired differences on {promptset} in comparisons.csv")
        return finish(fig, title)
    fig = new_figure(11.5, 0.3 * len(rows) + 2.0)
    axes = fig.subplots(1, len(METRICS), sharey=True)
    parents = tables.comparisons.drop_duplicates("model").set_index("model")["parent"]
    for ax, (metric, label) in zip(axes, METRICS, strict=True):
        data = comparison_values(tables.comparisons, metric, promptset)
        _draw_metric(ax, data, rows, styles)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("difference to the parent (< 0: less toxic)", fontsize=8.5)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels(
        [_row_label(m, parents.get(m), styles.get(m)) for m in rows], fontsize=8
    )
    for tick, model in zip(axes[0].get_yticklabels(), rows, strict=True):
        if model in styles:
            tick.set_color(tuple(0.75 * c for c in styles[model].colour[:3]))
    blocks = family_blocks(rows, styles)
    for ax in axes:
        _shade_blocks(ax, blocks, names=ax is axes[-1])
    return finish(fig, title, note=flag_note(styles, rows))
