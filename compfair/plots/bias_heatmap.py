"""Per-group sentiment on the bias prompts: groups x models, and each model against its parent.

Rows are the groups, under a header per domain (from the group -> domain
map); columns the models in display order. Left (or top): the mean VADER
compound of each model's continuations. Right (or below): the paired
difference to the model's own parent (``comparisons.csv``), with ``*`` where
the interval excludes 0. Columns of flagged models are hatched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.data import FigureOptions, Tables, blank
from compfair.plots.style import (
    finish,
    flag_note,
    model_styles,
    new_figure,
    no_data,
    pretty,
)

#: Above this many models the two heatmaps are stacked rather than side by side.
SIDE_BY_SIDE = 9


def heatmap_rows(
    groups: Sequence[str], group_domains: Mapping[str, str]
) -> list[tuple[str, str | None]]:
    """Display rows: a header (label, None) per domain, then its groups (label, group)."""
    by_domain: dict[str, list[str]] = {}
    for group in groups:
        by_domain.setdefault(group_domains.get(group, "other groups"), []).append(group)
    rows: list[tuple[str, str | None]] = []
    for domain in sorted(by_domain):
        if len(by_domain) > 1 or domain != "other groups":
            rows.append((pretty(domain).upper(), None))
        rows.extend((pretty(g), g) for g in sorted(by_domain[domain]))
    return rows


def _grid(frame: pd.DataFrame, metric: str, promptset: str, column: str) -> pd.DataFrame:
    """groups x models of ``column`` for the per-group rows of ``metric``."""
    if frame.empty:
        return pd.DataFrame()
    part = frame[
        (frame["metric"] == metric) & (frame["promptset"] == promptset) & ~blank(frame["group"])
    ]
    part = part.drop_duplicates(["model", "group"])
    return part.pivot(index="group", columns="model", values=column).astype(float)


def _cells(rows, models, grid: pd.DataFrame) -> np.ndarray:
    values = np.full((len(rows), len(models)), np.nan)
    for i, (_, group) in enumerate(rows):
        for j, model in enumerate(models):
            if group is not None and group in grid.index and model in grid.columns:
                values[i, j] = grid.at[group, model]
    return values


def _write_cells(ax: Axes, values: np.ndarray, rows, bound: float, stars) -> None:
    """Grey header rows per domain; every cell's value written in it (``–`` when missing)."""
    for i, (_, group) in enumerate(rows):
        if group is None:
            ax.axhspan(i - 0.5, i + 0.5, color="0.88", zorder=2)
            if i:
                ax.axhline(i - 0.5, color="black", lw=1.0, zorder=3)
            continue
        for j, v in enumerate(values[i]):
            if not np.isfinite(v):
                ax.text(j, i, "–", ha="center", va="center", fontsize=6.5, color="0.6", zorder=4)
                continue
            star = "*" if stars is not None and stars[i, j] else ""
            colour = "white" if abs(v) / bound > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{v:+.2f}{star}",
                ha="center",
                va="center",
                fontsize=6.5,
                color=colour,
                zorder=4,
            )


def _draw(
    ax: Axes, values: np.ndarray, rows, models, styles, title: str, colour_label: str, stars=None
) -> None:
    """One heatmap; ``stars`` marks cells whose interval excludes 0 (the difference panel,
    whose columns are then labelled ``model − parent``)."""
    finite = values[np.isfinite(values)]
    bound = max(0.05, float(np.abs(finite).max()) if finite.size else 0.05)
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="white")
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=cmap, vmin=-bound, vmax=bound, aspect="auto"
    )
    _write_cells(ax, values, rows, bound, stars)
    for j, model in enumerate(models):
        if model in styles and styles[model].flagged:
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (j - 0.5, -0.5),
                    1,
                    len(rows),
                    fill=False,
                    hatch="///",
                    edgecolor="0.45",
                    lw=0,
                    zorder=3,
                )
            )
    ax.set_xticks(range(len(models)))
    labels = [styles[m].label if m in styles else m for m in models]
    if stars is not None:
        labels = [
            f"{lab} − {styles[m].parent}" if m in styles else lab
            for lab, m in zip(labels, models, strict=True)
        ]
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label for label, _ in rows], fontsize=7.5)
    for tick, (_, group) in zip(ax.get_yticklabels(), rows, strict=True):
        if group is None:
            tick.set_fontweight("bold")
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.01).set_label(colour_label, fontsize=8)


@register_figure("bias_heatmap", category="Bias", order=50)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """Mean sentiment per group and model, and the paired difference to each model's parent."""
    styles = model_styles(tables)
    ps = options.bias_promptset
    values = _grid(tables.metrics, "sentiment_mean", ps, "value")
    diffs = _grid(tables.comparisons, "sentiment_mean", ps, "diff")
    title = f"Sentiment of the continuations of the {ps} prompts, by group"
    if values.empty:
        fig = new_figure(7, 3)
        no_data(fig.add_subplot(), f"no per-group sentiment_mean on {ps}")
        return finish(fig, title)
    groups = sorted(set(values.index) | set(diffs.index))
    rows = heatmap_rows(groups, options.group_domains)
    models = [m for m in styles if m in values.columns] + sorted(set(values.columns) - set(styles))
    changed = [m for m in models if m in diffs.columns]
    stacked = len(models) > SIDE_BY_SIDE or not changed
    width = 0.55 * len(models) + 3.0
    height = 0.24 * len(rows) + 2.4
    fig = new_figure(width if stacked else 2 * width, (2 if stacked and changed else 1) * height)
    axes = fig.subplots(2 if stacked and changed else 1, 1 if stacked else 2, squeeze=False).flat
    first = next(axes)
    _draw(
        first,
        _cells(rows, models, values),
        rows,
        models,
        styles,
        "Mean VADER compound",
        "mean sentiment (−1 … 1)",
    )
    if changed:
        lo, hi = (
            _grid(tables.comparisons, "sentiment_mean", ps, "ci_low"),
            _grid(tables.comparisons, "sentiment_mean", ps, "ci_high"),
        )
        stars = (_cells(rows, changed, lo) > 0) | (_cells(rows, changed, hi) < 0)
        _draw(
            next(axes),
            _cells(rows, changed, diffs),
            rows,
            changed,
            styles,
            f"Model − its parent (*: the paired {options.ci} excludes 0)",
            "difference in mean sentiment",
            stars,
        )
    return finish(fig, title + " (–: no data; hatched: flagged)", note=flag_note(styles, models))
