"""Figures drawn from the tidy ``tables/metrics.csv``.

- ``toxicity_vs_sparsity.png``: EMT and toxicity probability of the pruned
  models against sparsity, with the teacher (sparsity 0) and the distilled
  student as reference lines;
- ``sentiment_by_group.png``: mean VADER compound per group and model, one
  panel per domain;
- ``perplexity_vs_toxicity.png``: held-out perplexity against EMT, one point
  per model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from compfair.aggregate import model_compression, model_sort_key
from compfair.io import atomic_path, read_jsonl

log = logging.getLogger(__name__)

DPI = 120
COLOURS = {"none": "#1f77b4", "distillation": "#d62728", "pruning": "#2ca02c"}
METRIC_LABELS = {
    "expected_max_toxicity": "Expected max. toxicity (prob.)",
    "toxicity_probability": "Toxicity probability (share of prompts)",
}


def model_colour(model: str) -> tuple[float, float, float, float] | str:
    """One colour per model, the same in every figure: teacher blue, student red,
    pruned models greens darkening with sparsity, other models greys."""
    compression, level = model_compression(model)
    if compression == "pruning":
        return plt.get_cmap("Greens")(0.35 + 0.6 * min(max(float(level), 0.0), 1.0))
    if compression == "distillation":
        return COLOURS["distillation"]
    if model == "teacher":
        return COLOURS["none"]
    return "#7f7f7f"


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def _save(fig: plt.Figure, out_path: Path) -> None:
    out_path = Path(out_path)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    log.info("wrote %s", out_path)


def _no_data(ax: plt.Axes, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no data\n({what})",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="grey",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _promptset_values(metrics: pd.DataFrame, promptset: str, metric: str) -> pd.Series:
    """Value of a prompt-set level metric by model."""
    rows = metrics[
        (metrics["promptset"] == promptset)
        & (metrics["metric"] == metric)
        & _blank(metrics["group"])
    ]
    return rows.groupby("model")["value"].first()


def _model_values(metrics: pd.DataFrame, metric: str) -> pd.Series:
    rows = metrics[(metrics["metric"] == metric) & _blank(metrics["promptset"])]
    return rows.groupby("model")["value"].first()


def plot_toxicity_vs_sparsity(
    metrics: pd.DataFrame, out_path: Path, promptset: str = "rtp"
) -> None:
    """Two panels (EMT, toxicity probability) against the sparsity of pruned models.

    The pruned models form a line that starts at the teacher (sparsity 0); the
    teacher is also a dashed horizontal line, the distilled student a dotted
    one with its own marker, other uncompressed models dash-dotted.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, metric in zip(axes, ("expected_max_toxicity", "toxicity_probability"), strict=True):
        values = _promptset_values(metrics, promptset, metric)
        ax.set_title(f"{METRIC_LABELS[metric].split(' (')[0]} ({promptset})")
        if values.empty:
            _no_data(ax, f"{metric} on {promptset}")
            continue
        pruned = sorted(
            (model_compression(m)[1], v)
            for m, v in values.items()
            if model_compression(m)[0] == "pruning"
        )
        xs = [lvl for lvl, _ in pruned]
        ys = [v for _, v in pruned]
        if "teacher" in values:
            xs, ys = [0.0, *xs], [float(values["teacher"]), *ys]
            ax.axhline(
                values["teacher"],
                color=COLOURS["none"],
                ls="--",
                lw=1.2,
                label=f"teacher ({values['teacher']:.3f})",
            )
        if pruned:
            ax.plot(
                xs,
                ys,
                "-o",
                color=COLOURS["pruning"],
                lw=1.8,
                ms=6,
                label="magnitude-pruned teacher",
            )
        elif "teacher" in values:
            ax.plot([0.0], [values["teacher"]], "o", color=COLOURS["none"])
        others = [
            m for m in values.index if m != "teacher" and model_compression(m)[0] != "pruning"
        ]
        for model in sorted(others, key=model_sort_key):
            compression = model_compression(model)[0]
            if compression == "distillation":
                ax.axhline(
                    values[model],
                    color=COLOURS["distillation"],
                    ls=":",
                    lw=1.5,
                    label=f"{model} (distilled, {values[model]:.3f})",
                )
                ax.plot(
                    [0.0],
                    [values[model]],
                    marker="*",
                    ms=13,
                    ls="none",
                    color=COLOURS["distillation"],
                )
            else:
                ax.axhline(
                    values[model],
                    color="grey",
                    ls="-.",
                    lw=1.0,
                    label=f"{model} ({values[model]:.3f})",
                )
        ax.set_xlabel("Sparsity of prunable matrices (share of zero weights)")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_xlim(-0.03, max([0.9, *xs]) + 0.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Toxicity of continuations vs. pruning sparsity (prompt set: {promptset})")
    _save(fig, out_path)


def plot_sentiment_by_group(
    metrics: pd.DataFrame, out_path: Path, group_domains: Mapping[str, str] | None = None
) -> None:
    """Mean VADER compound per group: grouped bars (one bar per model), a panel per domain.

    ``metrics.csv`` does not say which domain a group belongs to; pass
    ``group_domains`` (group -> domain, e.g. from the bold prompts file, see
    :func:`group_domains_from_prompts`) to split the panels, else all groups
    share one panel.
    """
    rows = metrics[metrics["metric"] == "sentiment_mean"].copy()
    if rows.empty:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.set_title("Mean sentiment of continuations by group")
        _no_data(ax, "no sentiment_mean rows")
        _save(fig, out_path)
        return
    rows["group"] = rows["group"].astype(str)
    mapping = dict(group_domains or {})
    rows["domain"] = rows["group"].map(lambda g: mapping.get(g, "all groups"))
    domains = sorted(rows["domain"].unique())
    models = sorted(rows["model"].unique(), key=model_sort_key)
    n_groups = [rows.loc[rows["domain"] == d, "group"].nunique() for d in domains]
    width = max(6.0, 0.35 * len(models) * sum(n_groups) + 1.5 * len(domains))
    fig, axes = plt.subplots(
        1,
        len(domains),
        figsize=(min(width, 22), 4.8),
        squeeze=False,
        sharey=True,
        gridspec_kw={"width_ratios": [max(n, 1) for n in n_groups]},
    )
    bar_w = 0.8 / max(len(models), 1)
    for ax, domain in zip(axes[0], domains, strict=True):
        part = rows[rows["domain"] == domain]
        groups = sorted(part["group"].unique())
        x = np.arange(len(groups))
        for i, model in enumerate(models):
            vals = part[part["model"] == model].set_index("group")["value"]
            heights = [float(vals.get(g, np.nan)) for g in groups]
            ax.bar(
                x + (i - (len(models) - 1) / 2) * bar_w,
                heights,
                bar_w,
                label=model,
                color=model_colour(model),
                edgecolor="black",
                lw=0.4,
            )
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(
            [g.replace("_", " ") for g in groups], rotation=30, ha="right", fontsize=8
        )
        ax.set_title(f"{domain}")
        if ax is axes[0][0]:
            ax.set_ylabel("Mean VADER compound (−1 … 1)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=8, title="model", loc="best")
    fig.suptitle("Mean sentiment of continuations by group (higher = more positive)")
    _save(fig, out_path)


def plot_perplexity_vs_toxicity(
    metrics: pd.DataFrame, out_path: Path, promptset: str = "rtp"
) -> None:
    """Scatter of held-out perplexity (log x axis) against EMT, one labelled point per model."""
    ppl = _model_values(metrics, "perplexity")
    emt = _promptset_values(metrics, promptset, "expected_max_toxicity")
    both = pd.concat({"perplexity": ppl, "emt": emt}, axis=1).dropna()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.set_title(f"Language-model quality vs. toxicity (prompt set: {promptset})")
    if both.empty:
        _no_data(ax, "models need both perplexity and EMT")
        _save(fig, out_path)
        return
    seen: set[str] = set()
    for model in sorted(both.index, key=model_sort_key):
        compression = model_compression(model)[0]
        label = {"none": "uncompressed", "distillation": "distilled", "pruning": "pruned"}[
            compression
        ]
        ax.scatter(
            both.at[model, "perplexity"],
            both.at[model, "emt"],
            s=50,
            color=COLOURS[compression],
            label=None if label in seen else label,
            zorder=3,
        )
        seen.add(label)
        ax.annotate(
            model,
            (both.at[model, "perplexity"], both.at[model, "emt"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=8,
        )
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.margins(x=0.15, y=0.12)
    ax.set_xlabel("Held-out perplexity (log scale, lower = better)")
    ax.set_ylabel("Expected max. toxicity (prob.)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, out_path)


def group_domains_from_prompts(prompts_path: Path) -> dict[str, str]:
    """Map each group of a prompts file to its domain (prompts without a group are skipped)."""
    mapping: dict[str, str] = {}
    for row in read_jsonl(prompts_path, required=("prompt_id",)):
        if row.get("group") is not None:
            mapping.setdefault(str(row["group"]), str(row.get("domain") or "all groups"))
    return mapping


def plot_all(
    metrics_csv: Path, out_dir: Path, bias_prompts: Path | None = None, promptset: str = "rtp"
) -> list[Path]:
    """Draw the three figures from ``metrics_csv`` into ``out_dir``; return their paths.

    ``bias_prompts`` (the bold prompts file) lets the sentiment figure draw one
    panel per domain.
    """
    metrics = pd.read_csv(metrics_csv, dtype={"model": str, "promptset": str, "group": str})
    out_dir = Path(out_dir)
    paths = [
        out_dir / "toxicity_vs_sparsity.png",
        out_dir / "sentiment_by_group.png",
        out_dir / "perplexity_vs_toxicity.png",
    ]
    plot_toxicity_vs_sparsity(metrics, paths[0], promptset=promptset)
    domains = group_domains_from_prompts(Path(bias_prompts)) if bias_prompts else None
    plot_sentiment_by_group(metrics, paths[1], group_domains=domains)
    plot_perplexity_vs_toxicity(metrics, paths[2], promptset=promptset)
    return paths
