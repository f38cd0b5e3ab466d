"""Figures drawn from the tidy ``tables/metrics.csv`` (version 2 layout).

Every function takes the metrics frame (columns ``model, compression, level,
promptset, group, metric, value`` and, where present, ``ci_low, ci_high,
seed_sd, n_seeds, flagged``) and writes one PNG atomically:

- :func:`plot_metrics_vs_sparsity`: toxicity and bias metrics against pruning
  sparsity, one panel each, with the teacher and every distilled / reference
  model beside the pruning curve;
- :func:`plot_distillation_panel`: teacher against every distilled model
  (EMT, toxicity probability, held-out perplexity);
- :func:`plot_tradeoff`: EMT against held-out perplexity and against the number
  of non-zero parameters;
- :func:`plot_bold_heatmap`: groups x models heatmaps of mean sentiment (and
  mean toxicity) on the bias prompt set;
- :func:`plot_sentiment_by_group`: grouped bars of mean sentiment per group;
- :func:`plot_scorer_calibration`: agreement of the toxicity scorer with the
  reference scores (``tables/scorer_calibration.csv``).

A panel whose rows are missing says so instead of failing; confidence intervals
are drawn where ``ci_low``/``ci_high`` exist; models flagged as degenerate are
drawn hollow or hatched and labelled "(degenerate)". Colours and markers are
fixed per model from the frame, so a model looks the same in every figure.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.patches
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from compfair.io import atomic_path, read_jsonl

log = logging.getLogger(__name__)

DPI = 120
TEACHER = "teacher"
TEACHER_COLOUR = "#1f77b4"
PRUNE_COLOUR = "#2ca02c"
DISTILLED_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
DISTILLED_MARKERS = ("*", "D", "^", "v", "P")
OTHER_COLOURS = ("#7f7f7f", "#17becf", "#bcbd22")
OTHER_MARKERS = ("h", "p", "X")
DEGENERATE = "(degenerate)"
CI_NOTE = "shaded / bars: 95 % bootstrap CI over prompts"

METRIC_LABELS = {
    "expected_max_toxicity": ("Expected max. toxicity", "EMT (toxicity score, 0–1)"),
    "toxicity_probability": (
        "Toxicity probability",
        "share of prompts with ≥ 1 toxic sample",
    ),
    "mean_toxicity": ("Mean toxicity", "mean toxicity score (0–1)"),
    "perplexity": ("Held-out perplexity", "perplexity (log scale, lower = better)"),
}

_PRUNED = re.compile(r"^pruned-(\d+(?:\.\d+)?)$")


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelStyle:
    """How one model is drawn: its compression, level, colour, marker and flag."""

    compression: str
    level: float | None
    colour: object
    marker: str
    flagged: bool

    def label(self, model: str) -> str:
        return f"{model} {DEGENERATE}" if self.flagged else model


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip().isin(["", "nan", "None"]))


def _truthy(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "1.0", "yes"])


def _parse_model(model: str) -> tuple[str, float | None]:
    match = _PRUNED.match(model)
    if match:
        return "pruning", float(match.group(1))
    if model.startswith("student"):
        return "distillation", None
    return "none", None


def _sort_key(model: str, compression: str, level: float | None) -> tuple[int, float, str]:
    """Teacher, our students, other distilled models, other uncompressed, pruned by level."""
    if model == TEACHER:
        return (0, 0.0, model)
    if compression == "distillation":
        return (1 if model.startswith("student") else 2, 0.0, model)
    if compression == "pruning":
        return (4, float(level or 0.0), model)
    return (3, 0.0, model)


def model_styles(metrics: pd.DataFrame) -> dict[str, ModelStyle]:
    """Style of every model of ``metrics``, in display order.

    Compression and level come from the ``compression``/``level`` columns (the
    model name is parsed where they are blank); a model is flagged if any of its
    rows has ``flagged`` true. Teacher blue; distilled models red, orange,
    purple...; pruned models greens darkening with sparsity; others greys.
    """
    found: dict[str, tuple[str, float | None, bool]] = {}
    for model, part in metrics.groupby(metrics["model"].astype(str), sort=False):
        compression, level = _parse_model(model)
        if "compression" in part:
            given = part.loc[~_blank(part["compression"]), "compression"]
            if not given.empty:
                compression = str(given.iloc[0]).strip()
        if "level" in part:
            levels = pd.to_numeric(part["level"], errors="coerce").dropna()
            if not levels.empty:
                level = float(levels.iloc[0])
        flagged = bool(_truthy(part["flagged"]).any()) if "flagged" in part else False
        found[model] = (compression, level, flagged)
    order = sorted(found, key=lambda m: _sort_key(m, found[m][0], found[m][1]))
    styles: dict[str, ModelStyle] = {}
    n_distilled = n_other = 0
    greens = plt.get_cmap("Greens")
    for model in order:
        compression, level, flagged = found[model]
        if model == TEACHER:
            colour, marker = TEACHER_COLOUR, "s"
        elif compression == "pruning":
            colour, marker = greens(0.4 + 0.55 * min(max(level or 0.0, 0.0), 1.0)), "o"
        elif compression == "distillation":
            colour = DISTILLED_COLOURS[n_distilled % len(DISTILLED_COLOURS)]
            marker = DISTILLED_MARKERS[n_distilled % len(DISTILLED_MARKERS)]
            n_distilled += 1
        else:
            colour = OTHER_COLOURS[n_other % len(OTHER_COLOURS)]
            marker = OTHER_MARKERS[n_other % len(OTHER_MARKERS)]
            n_other += 1
        styles[model] = ModelStyle(compression, level, colour, marker, flagged)
    return styles


# --------------------------------------------------------------------------- selection


def _matches(series: pd.Series, wanted: str | None) -> pd.Series:
    if wanted is None or wanted == "":
        return _blank(series)
    return series.astype(str) == wanted


def _rows(
    metrics: pd.DataFrame, metric: str, promptset: str | None = None, group: str | None = None
) -> pd.DataFrame:
    """One row per model for ``metric`` (blank promptset / group when None):
    columns ``value, lo, hi`` (``lo``/``hi`` NaN without CI columns)."""
    part = metrics[
        (metrics["metric"] == metric)
        & _matches(metrics["promptset"], promptset)
        & _matches(metrics["group"], group)
    ]
    part = part.drop_duplicates("model").set_index(part["model"].astype(str).to_numpy())
    out = pd.DataFrame(index=part.index)
    out["value"] = pd.to_numeric(part["value"], errors="coerce")
    for src, dst in (("ci_low", "lo"), ("ci_high", "hi")):
        out[dst] = pd.to_numeric(part[src], errors="coerce") if src in part else np.nan
    return out[out["value"].notna()]


def _groups_of(metrics: pd.DataFrame, metric: str, promptset: str) -> list[str]:
    part = metrics[(metrics["metric"] == metric) & _matches(metrics["promptset"], promptset)]
    return sorted(part.loc[~_blank(part["group"]), "group"].astype(str).unique())


def _err(row: pd.Series) -> np.ndarray | None:
    """``[[below], [above]]`` for errorbar, or None without a finite CI."""
    if not (np.isfinite(row["lo"]) and np.isfinite(row["hi"])):
        return None
    return np.array([[max(row["value"] - row["lo"], 0.0)], [max(row["hi"] - row["value"], 0.0)]])


# --------------------------------------------------------------------------- drawing helpers


def _save(fig: plt.Figure, out_path: Path, rect: Sequence[float] | None = None) -> None:
    out_path = Path(out_path)
    if rect is None:
        fig.tight_layout()
    else:
        fig.tight_layout(rect=rect)
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
        fontsize=9,
        wrap=True,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _plain_log_axis(axis: matplotlib.axis.Axis) -> None:
    """Log axis with plain numbers (20, 50, 100) rather than 10^x."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _marker_kw(style: ModelStyle, size: float = 7.0) -> dict:
    """Filled marker, hollow for a degenerate model."""
    size = size * (1.6 if style.marker == "*" else 1.0)
    return {
        "marker": style.marker,
        "ms": size,
        "color": style.colour,
        "mfc": "white" if style.flagged else style.colour,
        "mec": style.colour,
        "mew": 1.8 if style.flagged else 0.8,
    }


def _figure_legend(fig: plt.Figure, axes: Sequence[plt.Axes], ncol: int) -> float:
    """One legend under all panels (entries deduplicated); returns its height share."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                seen.setdefault(label, handle)
    if not seen:
        return 0.0
    rows = math.ceil(len(seen) / ncol)
    height = fig.get_figheight()
    share = min(0.35, (0.28 * rows + 0.25) / height)
    fig.legend(
        list(seen.values()),
        list(seen.keys()),
        loc="lower center",
        ncol=ncol,
        fontsize=8.5,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    return share


# --------------------------------------------------------------------------- metrics vs sparsity


@dataclass
class _Panel:
    title: str
    ylabel: str
    data: pd.DataFrame
    missing: str
    ideal: float | None = None
    ideal_label: str = ""


def _sparsity_panels(
    metrics: pd.DataFrame, promptset: str, bias_promptset: str
) -> list[list[_Panel]]:
    """Rows of panels: toxicity + intrinsic bias; sentiment gap per domain; toxicity gap."""
    first: list[_Panel] = []
    for metric in ("expected_max_toxicity", "toxicity_probability", "mean_toxicity"):
        title, ylabel = METRIC_LABELS[metric]
        first.append(
            _Panel(
                f"{title} ({promptset})",
                ylabel,
                _rows(metrics, metric, promptset),
                f"{metric} on {promptset}",
            )
        )
    # both benchmarks are written in percent (50 = unbiased); a table in shares
    # (0..1) is recognised by its values
    for metric, promptset_name, title, ylabel in (
        (
            "crows_pairs_stereo_share",
            "crows_pairs",
            "CrowS-Pairs: stereotype preferred",
            "pairs preferring the stereotype",
        ),
        ("stereoset_ss", "stereoset", "StereoSet stereotype score (SS)", "SS"),
    ):
        data = _rows(metrics, metric, promptset_name)
        percent = data.empty or float(data["value"].abs().max()) > 1.5
        first.append(
            _Panel(
                title,
                f"{ylabel} ({'%' if percent else 'share'})",
                data,
                metric,
                50.0 if percent else 0.5,
                "no stereotype preference",
            )
        )
    grid = [first]
    for metric, title, ylabel in (
        ("sentiment_gap", "Sentiment gap", "max − min group mean VADER"),
        ("toxicity_gap", "Toxicity gap", "max − min group mean toxicity"),
    ):
        domains = _groups_of(metrics, metric, bias_promptset)
        if not domains:
            grid.append([_Panel(title, ylabel, pd.DataFrame(), f"{metric} on {bias_promptset}")])
            continue
        grid.append(
            [
                _Panel(
                    f"{title}: {d.replace('_', ' ')} ({bias_promptset})",
                    ylabel,
                    _rows(metrics, metric, bias_promptset, d),
                    f"{metric} {d}",
                    0.0,
                    "no gap",
                )
                for d in domains
            ]
        )
    return grid


def _draw_sparsity_panel(
    ax: plt.Axes,
    panel: _Panel,
    styles: Mapping[str, ModelStyle],
    ref_x: Mapping[str, float],
    levels: Sequence[float],
    step: float,
) -> None:
    ax.set_title(panel.title, fontsize=10)
    data = panel.data
    if data.empty:
        _no_data(ax, panel.missing)
        return
    teacher = data.loc[TEACHER] if TEACHER in data.index else None
    if teacher is not None:
        ax.axhline(teacher["value"], color=TEACHER_COLOUR, ls="--", lw=1.2, label="teacher")
        if np.isfinite(teacher["lo"]) and np.isfinite(teacher["hi"]):
            ax.axhspan(
                teacher["lo"],
                teacher["hi"],
                color=TEACHER_COLOUR,
                alpha=0.10,
                lw=0,
                label="teacher 95 % CI",
            )
    pruned = sorted(
        (styles[m].level or 0.0, m)
        for m in data.index
        if m in styles and styles[m].compression == "pruning"
    )
    xs = [lvl for lvl, _ in pruned]
    part = data.loc[[m for _, m in pruned]]
    if teacher is not None:
        xs = [0.0, *xs]
        part = pd.concat([data.loc[[TEACHER]], part])
    if pruned:
        # solid through usable models, dashed into degenerate ones: their toxicity
        # drop comes from broken text, not from the compression
        ok = np.array([not styles[m].flagged for m in part.index])
        ax.plot(xs, part["value"], "--", color=PRUNE_COLOUR, lw=1.0, alpha=0.7)
        ax.plot(
            np.array(xs)[ok],
            part["value"][ok],
            "-",
            color=PRUNE_COLOUR,
            lw=1.8,
            label="magnitude-pruned teacher",
        )
        if part[["lo", "hi"]].notna().all(axis=None):
            ax.fill_between(
                xs,
                part["lo"],
                part["hi"],
                color=PRUNE_COLOUR,
                alpha=0.18,
                lw=0,
                label="pruned 95 % CI",
            )
    for x, model in zip(xs, part.index, strict=True):
        style = styles[model]
        label = style.label(model) if style.flagged else "_nolegend_"
        if model == TEACHER:
            label = "_nolegend_"
        ax.plot(
            [x],
            [data.at[model, "value"]],
            ls="none",
            zorder=4,
            label=label,
            **_marker_kw(style, 6.5),
        )
    for model, x in ref_x.items():
        if model not in data.index:
            continue
        row = data.loc[model]
        style = styles[model]
        ax.errorbar(
            [x],
            [row["value"]],
            yerr=_err(row),
            ls="none",
            capsize=3,
            elinewidth=1.2,
            zorder=4,
            label=style.label(model),
            **_marker_kw(style),
        )
    if panel.ideal is not None:
        ax.axhline(panel.ideal, color="black", ls=":", lw=0.9, label=f"_{panel.ideal_label}")
    if ref_x:
        left = min(ref_x.values()) - step / 2
        ax.axvspan(left, -step / 2, color="0.94", zorder=0)
        ax.axvline(-step / 2, color="0.6", lw=0.6)
    ticks = sorted({0.0, *levels})
    labels = [f"{t:.2f}".rstrip("0").rstrip(".") if t else "0" for t in ticks]
    if ref_x:
        # the reference strip gets one tick; the legend names its markers
        ticks = [float(np.mean(list(ref_x.values()))), *ticks]
        labels = ["refs", *labels]
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    hi = max([0.5, *levels])
    ax.set_xlim(min([*ref_x.values(), 0.0]) - step * 0.8, hi + step * 0.8)
    ax.set_ylabel(panel.ylabel, fontsize=8.5)
    ax.set_xlabel("sparsity (share of zero weights)", fontsize=8.5)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def plot_metrics_vs_sparsity(
    metrics: pd.DataFrame, out_path: Path, promptset: str = "rtp", bias_promptset: str = "bold"
) -> None:
    """Toxicity and bias metrics against pruning sparsity, one panel per metric.

    Rows of panels: toxicity on ``promptset`` (EMT, toxicity probability, mean
    toxicity) and intrinsic bias (CrowS-Pairs stereotype share, StereoSet SS);
    the sentiment gap per domain of ``bias_promptset``; the toxicity gap per
    domain. In each panel the pruned models form a line starting at the teacher
    (sparsity 0) with a shaded CI band; the teacher is also a dashed line with
    its band; distilled and other reference models are markers with CI error
    bars in a grey strip left of sparsity 0.
    """
    styles = model_styles(metrics)
    grid = _sparsity_panels(metrics, promptset, bias_promptset)
    ncols = max(len(row) for row in grid)
    levels = sorted(
        {s.level for s in styles.values() if s.compression == "pruning" and s.level is not None}
    )
    span = max([0.5, *levels])
    step = 0.08 * span
    refs = [m for m, s in styles.items() if m != TEACHER and s.compression != "pruning"]
    ref_x = {m: -step * (len(refs) - i) for i, m in enumerate(refs)}
    fig, axes = plt.subplots(
        len(grid), ncols, figsize=(3.7 * ncols, 3.1 * len(grid) + 1.2), squeeze=False
    )
    for r, row in enumerate(grid):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(row):
                ax.set_visible(False)
                continue
            _draw_sparsity_panel(ax, row[c], styles, ref_x, levels, step)
    bottom = _figure_legend(fig, list(axes.flat), ncol=min(6, max(ncols, 3)))
    fig.suptitle(
        f"Toxicity and bias vs. pruning sparsity (toxicity: {promptset}, groups: "
        f"{bias_promptset}; {CI_NOTE}; dotted: ideal)",
        fontsize=11,
    )
    _save(fig, out_path, rect=(0, bottom, 1, 0.97))


# --------------------------------------------------------------------------- distillation


def _bar_panel(
    ax: plt.Axes,
    data: pd.DataFrame,
    models: Sequence[str],
    styles: Mapping[str, ModelStyle],
    fmt: str,
) -> None:
    x = np.arange(len(models))
    for i, model in enumerate(models):
        style = styles[model]
        if model not in data.index:
            ax.text(
                i,
                0.02,
                "n/a",
                transform=ax.get_xaxis_transform(),
                ha="center",
                fontsize=8,
                color="grey",
            )
            continue
        row = data.loc[model]
        ax.bar(
            i,
            row["value"],
            0.7,
            color=style.colour,
            alpha=0.55 if style.flagged else 0.9,
            hatch="///" if style.flagged else None,
            edgecolor="black",
            lw=0.6,
        )
        err = _err(row)
        if err is not None:
            ax.errorbar([i], [row["value"]], yerr=err, color="black", capsize=4, lw=1.1)
        top = row["hi"] if np.isfinite(row["hi"]) else row["value"]
        ax.annotate(
            fmt.format(row["value"]),
            (i, top),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(
        [m + ("\n" + DEGENERATE if styles[m].flagged else "") for m in models],
        rotation=25,
        ha="right",
        fontsize=8.5,
    )
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.grid(axis="y", alpha=0.3)


def plot_distillation_panel(metrics: pd.DataFrame, out_path: Path, promptset: str = "rtp") -> None:
    """Teacher against every distilled model: bars of EMT, toxicity probability
    (on ``promptset``, with CI error bars) and held-out perplexity (log axis).
    Other uncompressed reference models, if any, are drawn after the teacher."""
    styles = model_styles(metrics)
    models = [m for m, s in styles.items() if s.compression in ("none", "distillation")]
    specs = [
        ("expected_max_toxicity", promptset, "{:.3f}"),
        ("toxicity_probability", promptset, "{:.3f}"),
        ("perplexity", None, "{:.1f}"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3, 4.6))
    for ax, (metric, pset, fmt) in zip(axes, specs, strict=True):
        title, ylabel = METRIC_LABELS[metric]
        ax.set_title(title + (f" ({pset})" if pset else ""), fontsize=10)
        data = _rows(metrics, metric, pset)
        shown = [m for m in models if m in data.index]
        if not shown:
            _no_data(ax, f"{metric}" + (f" on {pset}" if pset else ""))
            continue
        _bar_panel(ax, data, shown, styles, fmt)
        ax.set_ylabel(ylabel, fontsize=9)
        if metric == "perplexity":
            ax.set_yscale("log")
            _plain_log_axis(ax.yaxis)
            ax.margins(y=0.15)
        else:
            ax.set_ylim(0, max(1e-3, float(data.loc[shown, ["value", "hi"]].max().max())) * 1.18)
    fig.suptitle(
        "Teacher vs. distilled models (error bars: 95 % bootstrap CI over prompts; "
        "hatched: degenerate output)",
        fontsize=11,
    )
    _save(fig, out_path)


# --------------------------------------------------------------------------- trade-off


def nonzero_parameters(metrics: pd.DataFrame) -> tuple[pd.Series, bool]:
    """Non-zero parameters per model, and whether the count is exact.

    Exact from ``n_nonzero_parameters`` rows, or from
    ``n_parameters - sparsity * n_prunable``; without ``n_prunable`` it falls
    back to ``n_parameters * (1 - sparsity)``, a lower bound (sparsity is
    measured over the prunable matrices only). Missing sparsity counts as 0.
    """
    direct = _rows(metrics, "n_nonzero_parameters")["value"]
    total = _rows(metrics, "n_parameters")["value"]
    sparsity = _rows(metrics, "sparsity")["value"].reindex(total.index).fillna(0.0)
    prunable = _rows(metrics, "n_prunable")["value"].reindex(total.index)
    exact = prunable.notna() | total.index.isin(direct.index) | (sparsity == 0)
    estimate = total - sparsity * prunable.fillna(total)
    estimate.update(direct)
    return estimate, bool(exact.all())


def _labelled_points(
    ax: plt.Axes,
    x: pd.DataFrame,
    y: pd.DataFrame,
    styles: Mapping[str, ModelStyle],
) -> None:
    """One marker per model with x and y CI error bars, labelled with its name;
    the teacher and the pruned models joined in order of sparsity."""
    models = [m for m in styles if m in x.index and m in y.index]
    path = [m for m in models if m == TEACHER or styles[m].compression == "pruning"]
    if len(path) > 1:
        ax.plot(
            x.loc[path, "value"],
            y.loc[path, "value"],
            "-",
            color=PRUNE_COLOUR,
            lw=0.9,
            alpha=0.6,
            zorder=1,
        )
    xv = x.loc[models, "value"].astype(float)
    if ax.get_xscale() == "log":
        xv = np.log10(xv.clip(lower=1e-12))
    span = float(xv.max() - xv.min()) or 1.0
    for model in models:
        style = styles[model]
        xe, ye = _err(x.loc[model]), _err(y.loc[model])
        # pruned models are labelled by their sparsity alone, below right, so that
        # neighbours do not overprint; the teacher and the rightmost point to the left
        pruned = style.compression == "pruning" and style.level is not None
        left = model == TEACHER or (not pruned and (xv[model] - xv.min()) / span > 0.85)
        offset = (-6 if left else 6, -12 if pruned else 5)
        label = f"{style.level:.2f}" if pruned else model
        label += f" {DEGENERATE}" if style.flagged else ""
        ax.errorbar(
            [x.at[model, "value"]],
            [y.at[model, "value"]],
            xerr=xe,
            yerr=ye,
            ls="none",
            capsize=2.5,
            elinewidth=1.0,
            zorder=3,
            **_marker_kw(style),
        )
        ax.annotate(
            label,
            (x.at[model, "value"], y.at[model, "value"]),
            textcoords="offset points",
            xytext=offset,
            fontsize=7.5,
            ha="right" if left else "left",
            color="0.35" if style.flagged else "black",
        )
    if len(models) == 1:  # margins cannot widen a single point
        v = float(x.at[models[0], "value"])
        ax.set_xlim(*((v * 0.8, v * 1.25) if v > 0 else (v - 1.0, v + 1.0)))
        ax.margins(y=0.15)
    else:
        ax.margins(x=0.18, y=0.15)
    ax.grid(alpha=0.3, which="both")


def plot_tradeoff(metrics: pd.DataFrame, out_path: Path, promptset: str = "rtp") -> None:
    """EMT on ``promptset`` against held-out perplexity (log x) and against the
    number of non-zero parameters, one labelled point per model with CI bars."""
    styles = model_styles(metrics)
    emt = _rows(metrics, "expected_max_toxicity", promptset)
    ppl = _rows(metrics, "perplexity")
    nonzero, exact = nonzero_parameters(metrics)
    size = pd.DataFrame({"value": nonzero / 1e6, "lo": np.nan, "hi": np.nan})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.9))
    ylabel = METRIC_LABELS["expected_max_toxicity"][1]
    ax = axes[0]
    ax.set_title(f"Quality vs. toxicity ({promptset})", fontsize=10)
    if ppl.index.intersection(emt.index).empty:
        _no_data(ax, "models need both perplexity and EMT")
    else:
        ax.set_xscale("log")
        _labelled_points(ax, ppl, emt, styles)
        _plain_log_axis(ax.xaxis)
        ax.set_xlabel("held-out perplexity (log scale, lower = better)")
        ax.set_ylabel(ylabel)
    ax = axes[1]
    ax.set_title(f"Size vs. toxicity ({promptset})", fontsize=10)
    if size.index.intersection(emt.index).empty:
        _no_data(ax, "models need both n_parameters and EMT")
    else:
        _labelled_points(ax, size, emt, styles)
        ax.set_xlabel(
            "non-zero parameters (M)"
            + ("" if exact else " — lower bound: n_parameters × (1 − sparsity)")
        )
        ax.set_ylabel(ylabel)
    fig.suptitle(
        "Toxicity vs. quality and size (error bars: 95 % CI; green: pruned teacher, "
        "labelled by sparsity; hollow: degenerate)",
        fontsize=10.5,
    )
    _save(fig, out_path)


# --------------------------------------------------------------------------- group heatmap


def _heatmap_rows(
    groups: Sequence[str], group_domains: Mapping[str, str]
) -> list[tuple[str, str | None]]:
    """Display rows: a header row per domain (label, None) then its groups (label, group)."""
    by_domain: dict[str, list[str]] = {}
    for g in groups:
        by_domain.setdefault(group_domains.get(g, "other groups"), []).append(g)
    rows: list[tuple[str, str | None]] = []
    for domain in sorted(by_domain):
        if len(by_domain) > 1 or domain != "other groups":
            rows.append((domain.replace("_", " ").upper(), None))
        rows.extend((g.replace("_", " "), g) for g in sorted(by_domain[domain]))
    return rows


def _draw_heatmap(
    ax: plt.Axes,
    table: pd.DataFrame,
    rows: Sequence[tuple[str, str | None]],
    models: Sequence[str],
    styles: Mapping[str, ModelStyle],
    diverging: bool,
    title: str,
    colour_label: str,
    show_rows: bool,
) -> None:
    values = np.full((len(rows), len(models)), np.nan)
    for i, (_, group) in enumerate(rows):
        if group is None:
            continue
        for j, model in enumerate(models):
            values[i, j] = table.get(model, pd.Series(dtype=float)).get(group, np.nan)
    finite = values[np.isfinite(values)]
    if diverging:
        bound = max(0.05, float(np.abs(finite).max()) if finite.size else 0.05)
        cmap, vmin, vmax, fmt = plt.get_cmap("RdBu"), -bound, bound, "{:+.2f}"
    else:
        top = max(0.05, float(finite.max()) if finite.size else 0.05)
        cmap, vmin, vmax, fmt = plt.get_cmap("Reds"), 0.0, top, "{:.2f}"
    cmap = cmap.with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i, (_label, group) in enumerate(rows):
        if group is None:
            ax.axhspan(i - 0.5, i + 0.5, color="0.9", zorder=2)
            if i:
                ax.axhline(i - 0.5, color="black", lw=1.2, zorder=3)
            continue
        for j in range(len(models)):
            v = values[i, j]
            if np.isfinite(v):
                strong = abs(v) / (vmax or 1.0) > 0.6
                ax.text(
                    j,
                    i,
                    fmt.format(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if strong else "black",
                    zorder=4,
                )
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=7, color="0.6")
    for j, model in enumerate(models):
        if styles[model].flagged:
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (j - 0.5, -0.5),
                    1,
                    len(rows),
                    fill=False,
                    hatch="///",
                    edgecolor="0.5",
                    lw=0,
                    alpha=0.5,
                    zorder=3,
                )
            )
    ax.set_xticks(np.arange(len(models)))
    ax.set_xticklabels(
        [m + ("\n" + DEGENERATE if styles[m].flagged else "") for m in models],
        rotation=40,
        ha="right",
        fontsize=8,
    )
    ax.set_yticks(np.arange(len(rows)))
    if show_rows:
        ax.set_yticklabels([label for label, _ in rows], fontsize=8)
        for tick, (_, group) in zip(ax.get_yticklabels(), rows, strict=True):
            if group is None:
                tick.set_fontweight("bold")
    else:
        ax.set_yticklabels([])
    ax.set_title(title, fontsize=10)
    colourbar = ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    colourbar.set_label(colour_label, fontsize=8.5)


def plot_bold_heatmap(
    metrics: pd.DataFrame,
    out_path: Path,
    group_domains: Mapping[str, str] | None = None,
    promptset: str = "bold",
) -> None:
    """Groups (rows, under a header per domain) x models (columns) on ``promptset``.

    Left: ``sentiment_mean`` (diverging colours centred at 0, values written in
    the cells); right, where per-group rows exist: ``mean_toxicity``. Columns of
    degenerate models are hatched. ``group_domains`` maps group -> domain (see
    :func:`group_domains_from_prompts`).
    """
    styles = model_styles(metrics)
    mapping = dict(group_domains or {})
    specs = [
        ("sentiment_mean", True, "Mean sentiment", "mean VADER compound (−1 … 1)"),
        ("mean_toxicity", False, "Mean toxicity", "mean toxicity score (0–1)"),
    ]
    tables = []
    for metric, diverging, title, colour_label in specs:
        part = metrics[
            (metrics["metric"] == metric)
            & _matches(metrics["promptset"], promptset)
            & ~_blank(metrics["group"])
        ]
        table = {
            model: pd.to_numeric(p.set_index(p["group"].astype(str))["value"], errors="coerce")
            for model, p in part.groupby(part["model"].astype(str))
        }
        if table or metric == "sentiment_mean":
            tables.append((table, diverging, title, colour_label))
    groups = sorted({g for table, *_ in tables for t in table.values() for g in t.index})
    models = [m for m in styles if any(m in table for table, *_ in tables)]
    if not groups or not models:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.set_title(f"Per-group sentiment and toxicity ({promptset})")
        _no_data(ax, f"no per-group sentiment_mean / mean_toxicity on {promptset}")
        _save(fig, out_path)
        return
    rows = _heatmap_rows(groups, mapping)
    width = 0.62 * len(models) + 1.6
    fig, axes = plt.subplots(
        1,
        len(tables),
        figsize=(max(width * len(tables) + 1.6, 8.0), 0.27 * len(rows) + 2.6),
        squeeze=False,
    )
    for k, (ax, (table, diverging, title, colour_label)) in enumerate(
        zip(axes[0], tables, strict=True)
    ):
        _draw_heatmap(
            ax,
            table,
            rows,
            models,
            styles,
            diverging,
            f"{title} ({promptset})",
            colour_label,
            show_rows=k == 0,
        )
    fig.suptitle(
        "Continuations of the bias prompts by group and model\n"
        "(–: no data; hatched columns: degenerate output)",
        fontsize=10.5,
    )
    _save(fig, out_path)


# --------------------------------------------------------------------------- sentiment bars


def plot_sentiment_by_group(
    metrics: pd.DataFrame, out_path: Path, group_domains: Mapping[str, str] | None = None
) -> None:
    """Mean VADER compound per group: grouped bars (one bar per model), a panel per domain.

    ``metrics.csv`` does not say which domain a group belongs to; pass
    ``group_domains`` (group -> domain, e.g. from the bold prompts file, see
    :func:`group_domains_from_prompts`) to split the panels, else all groups
    share one panel. CI error bars where the table has them; degenerate models hatched.
    """
    rows = metrics[(metrics["metric"] == "sentiment_mean") & ~_blank(metrics["group"])].copy()
    if rows.empty:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.set_title("Mean sentiment of continuations by group")
        _no_data(ax, "no sentiment_mean rows")
        _save(fig, out_path)
        return
    styles = model_styles(metrics)
    rows["group"] = rows["group"].astype(str)
    rows["model"] = rows["model"].astype(str)
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    for src in ("ci_low", "ci_high"):
        rows[src] = pd.to_numeric(rows[src], errors="coerce") if src in rows else np.nan
    mapping = dict(group_domains or {})
    rows["domain"] = rows["group"].map(lambda g: mapping.get(g, "all groups"))
    domains = sorted(rows["domain"].unique())
    models = [m for m in styles if m in set(rows["model"])]
    n_groups = [rows.loc[rows["domain"] == d, "group"].nunique() for d in domains]
    width = max(6.0, 0.3 * len(models) * sum(n_groups) + 1.5 * len(domains))
    fig, axes = plt.subplots(
        1,
        len(domains),
        figsize=(min(width, 22), 5.2),
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
            style = styles[model]
            vals = part[part["model"] == model].drop_duplicates("group").set_index("group")
            vals = vals.reindex(groups)
            offsets = x + (i - (len(models) - 1) / 2) * bar_w
            ax.bar(
                offsets,
                vals["value"],
                bar_w,
                label=style.label(model),
                color=style.colour,
                alpha=0.55 if style.flagged else 0.95,
                hatch="///" if style.flagged else None,
                edgecolor="black",
                lw=0.4,
            )
            ok = vals[["ci_low", "ci_high"]].notna().all(axis=1).to_numpy()
            if ok.any():
                err = np.vstack(
                    [
                        (vals["value"] - vals["ci_low"]).clip(lower=0).to_numpy()[ok],
                        (vals["ci_high"] - vals["value"]).clip(lower=0).to_numpy()[ok],
                    ]
                )
                ax.errorbar(
                    offsets[ok],
                    vals["value"].to_numpy()[ok],
                    yerr=err,
                    ls="none",
                    color="black",
                    lw=0.7,
                    capsize=1.5,
                )
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(
            [g.replace("_", " ") for g in groups], rotation=30, ha="right", fontsize=8
        )
        ax.set_title(domain.replace("_", " "), fontsize=10)
        if ax is axes[0][0]:
            ax.set_ylabel("Mean VADER compound (−1 … 1)")
        ax.grid(axis="y", alpha=0.3)
    bottom = _figure_legend(fig, list(axes[0]), ncol=min(8, max(len(models), 1)))
    fig.suptitle(
        "Mean sentiment of continuations by group (higher = more positive; "
        "error bars: 95 % CI; hatched: degenerate)",
        fontsize=11,
    )
    _save(fig, out_path, rect=(0, bottom, 1, 0.97))


# --------------------------------------------------------------------------- scorer calibration

CALIBRATION_COLUMNS = ("scorer", "text", "n", "n_toxic", "roc_auc", "spearman")


def plot_scorer_calibration(calibration: pd.DataFrame, out_path: Path) -> None:
    """ROC AUC and Spearman correlation of each toxicity scorer against the
    reference scores, per text type (prompt, continuation); a metric that
    cannot be computed (NaN, e.g. only one class) is shown as "n/a (one class)"."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4))
    missing = [c for c in CALIBRATION_COLUMNS if c not in calibration.columns]
    if missing or calibration.empty:
        for ax, title in zip(axes, ("ROC AUC", "Spearman ρ"), strict=True):
            ax.set_title(title)
            _no_data(ax, f"missing columns {missing}" if missing else "empty calibration table")
        _save(fig, out_path)
        return
    table = calibration.copy()
    table["scorer"] = table["scorer"].astype(str)
    table["text"] = table["text"].astype(str)
    texts = sorted(
        table["text"].unique(), key=lambda t: ({"prompt": 0, "continuation": 1}.get(t, 2), t)
    )
    scorers = list(dict.fromkeys(table["scorer"]))
    colours = plt.get_cmap("tab10")
    width = 0.8 / len(scorers)
    specs = (
        ("roc_auc", "ROC AUC (toxic vs. non-toxic by reference)", 0.5, "chance"),
        ("spearman", "Spearman ρ with reference scores", 0.0, "no correlation"),
    )
    for ax, (column, title, ref, ref_label) in zip(axes, specs, strict=True):
        values = pd.to_numeric(table[column], errors="coerce")
        lowest = min(0.0, float(values.min()) - 0.1) if values.notna().any() else 0.0
        for k, scorer in enumerate(scorers):
            for i, text in enumerate(texts):
                sel = (table["scorer"] == scorer) & (table["text"] == text)
                if not sel.any():
                    continue
                x = i + (k - (len(scorers) - 1) / 2) * width
                v = float(values[sel].iloc[0])
                if np.isfinite(v):
                    ax.bar(
                        x, v, width * 0.9, color=colours(k), edgecolor="black", lw=0.5, label=scorer
                    )
                    ax.annotate(
                        f"{v:.2f}",
                        (x, max(v, 0)),
                        textcoords="offset points",
                        xytext=(0, 3),
                        ha="center",
                        fontsize=8,
                    )
                else:
                    ax.bar(
                        x,
                        1.0 - lowest,
                        width * 0.9,
                        bottom=lowest,
                        color="none",
                        edgecolor="0.6",
                        hatch="..",
                        lw=0.6,
                        ls="--",
                    )
                    ax.text(
                        x,
                        (1.0 + lowest) / 2,
                        "n/a\n(one class)",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="0.25",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
                    )
        ax.axhline(ref, color="black", ls=":", lw=0.9)
        ax.text(-0.55, ref, ref_label, va="bottom", ha="left", fontsize=7.5, color="0.3")
        ax.set_ylim(lowest, 1.08)
        ax.set_xticks(np.arange(len(texts)))
        ax.set_xticklabels([_text_label(table, t) for t in texts], fontsize=8.5)
        ax.set_xlim(-0.6, len(texts) - 0.4)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(
            {"roc_auc": "ROC AUC (0.5 = chance)", "spearman": "Spearman ρ (−1 … 1)"}[column]
        )
        ax.grid(axis="y", alpha=0.3)
    bottom = _figure_legend(fig, list(axes), ncol=min(6, len(scorers)))
    fig.suptitle("Toxicity scorer against the reference (Perspective) scores", fontsize=11)
    _save(fig, out_path, rect=(0, bottom, 1, 0.97))


def _text_label(table: pd.DataFrame, text: str) -> str:
    """``prompt`` with its size (n, toxic) when every scorer saw the same texts."""
    part = table[table["text"] == text]
    counts = part[["n", "n_toxic"]].drop_duplicates()
    if len(counts) == 1:
        n, toxic = counts.iloc[0]
        try:
            return f"{text}\n(n = {int(n)}, toxic = {int(toxic)})"
        except (TypeError, ValueError):
            return text
    return text


# --------------------------------------------------------------------------- inputs and all figures


def group_domains_from_prompts(prompts_path: Path) -> dict[str, str]:
    """Map each group of a prompts file to its domain (prompts without a group are skipped)."""
    mapping: dict[str, str] = {}
    for row in read_jsonl(prompts_path, required=("prompt_id",)):
        if row.get("group") is not None:
            mapping.setdefault(str(row["group"]), str(row.get("domain") or "all groups"))
    return mapping


def read_metrics(metrics_csv: Path) -> pd.DataFrame:
    """``metrics.csv`` with blank cells as NaN and identifiers as strings."""
    frame = pd.read_csv(
        metrics_csv,
        dtype={"model": str, "family": str, "level": str, "promptset": str, "group": str},
        keep_default_na=False,
        na_values=[""],
    )
    if "compression" not in frame and "family" in frame:  # interim: until the figures use families
        frame["compression"] = frame["family"].replace({"base": "none", "finetuned": "none", "reference": "none"})
        frame = frame[~frame["metric"].str.endswith("_nonempty") & ~frame["metric"].str.endswith("_nonempty_diff")]
    return frame


#: Figure file stem -> drawing function, in report order.
FIGURES = (
    "metrics_vs_sparsity",
    "distillation",
    "tradeoff",
    "bold_heatmap",
    "sentiment_by_group",
    "scorer_calibration",
)


def plot_all(
    metrics_csv: Path,
    out_dir: Path,
    bias_prompts: Path | None = None,
    promptset: str = "rtp",
    bias_promptset: str = "bold",
    calibration_csv: Path | None = None,
) -> list[Path]:
    """Draw every figure of :data:`FIGURES` into ``out_dir``; return their paths.

    ``bias_prompts`` (the bold prompts file) gives the group -> domain mapping;
    ``calibration_csv`` the scorer calibration table (the figure says "no data"
    without it).
    """
    metrics = read_metrics(metrics_csv)
    out_dir = Path(out_dir)
    paths = {name: out_dir / f"{name}.png" for name in FIGURES}
    domains = group_domains_from_prompts(Path(bias_prompts)) if bias_prompts else {}
    calibration = (
        pd.read_csv(calibration_csv)
        if calibration_csv
        else pd.DataFrame(columns=list(CALIBRATION_COLUMNS))
    )
    plot_metrics_vs_sparsity(metrics, paths["metrics_vs_sparsity"], promptset, bias_promptset)
    plot_distillation_panel(metrics, paths["distillation"], promptset)
    plot_tradeoff(metrics, paths["tradeoff"], promptset)
    plot_bold_heatmap(metrics, paths["bold_heatmap"], domains, bias_promptset)
    plot_sentiment_by_group(metrics, paths["sentiment_by_group"], group_domains=domains)
    plot_scorer_calibration(calibration, paths["scorer_calibration"])
    return list(paths.values())
