"""How far the toxicity scorer agrees with the reference (Perspective) scores.

From ``tables/scorer_calibration.csv`` (one row per scorer, text kind and
threshold rule): ROC AUC and Spearman's rho per text kind (they do not
depend on the threshold), and Cohen's kappa between the scorer's and the
reference's toxic / non-toxic calls at both thresholds: ``fixed`` (the
scorer cut at the reference's threshold) and ``matched`` (the scorer cut
where it calls as many texts toxic as the reference does). A value that
cannot be computed (one class only, no matched threshold) is a dashed
"n/a" box.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from compfair.plots import register_figure
from compfair.plots.data import FigureOptions, Tables
from compfair.plots.style import finish, legend_below, new_figure, no_data
from compfair.scorer_calibration import TEXT_KINDS, THRESHOLD_RULES

PANELS = (
    ("roc_auc", "ROC AUC (reference toxic vs. not)", 0.5, "ROC AUC (0.5: chance)"),
    ("spearman", "Spearman ρ with the reference scores", 0.0, "Spearman ρ (0: no relation)"),
    (
        "kappa",
        "Cohen's κ of the toxic calls, both thresholds",
        0.0,
        "Cohen's κ (0: chance agreement)",
    ),
)
RULE_HATCH = {"fixed": None, "matched": "...."}


def _na_box(ax: Axes, x: float, width: float, why: str) -> None:
    ax.bar([x], [1.0], width, bottom=0.0, color="none", edgecolor="0.6", ls="--", lw=0.7)
    ax.text(x, 0.75, f"n/a\n{why}", ha="center", va="center", fontsize=7, color="0.35")


def _why_missing(rows: pd.DataFrame, column: str, rule: str | None) -> str:
    """Why a calibration value is NaN, as far as the row says."""
    if rule == "matched" and "scorer_threshold" in rows and rows["scorer_threshold"].isna().all():
        return "(no matched\nthreshold)"
    if column in ("roc_auc", "kappa") and {"n", "n_toxic"} <= set(rows.columns):
        n, toxic = rows["n"].iloc[0], rows["n_toxic"].iloc[0]
        if toxic in (0, n):
            return "(one class)"
    return ""


def _threshold_text(table: pd.DataFrame, scorer: str, rule: str) -> str:
    cut = (
        pd.to_numeric(
            table.loc[
                (table["scorer"] == scorer) & (table["threshold_rule"] == rule), "scorer_threshold"
            ],
            errors="coerce",
        )
        if "scorer_threshold" in table
        else pd.Series(dtype=float)
    )
    cut = cut[np.isfinite(cut)]
    return f"≥ {cut.iloc[0]:.2g}" if len(cut) else "none"


def _bars(ax: Axes, table: pd.DataFrame, column: str, texts, scorers, rules) -> None:
    """One bar per (scorer[, rule]) in each text kind's group; n/a boxes for NaN."""
    combos = [(s, r) for s in scorers for r in rules]
    width = min(0.8 / len(combos), 0.3)
    colours = matplotlib.colormaps["tab10"]
    for k, (scorer, rule) in enumerate(combos):
        for i, text in enumerate(texts):
            sel = (table["scorer"] == scorer) & (table["text"] == text)
            if rule is not None:
                sel &= table["threshold_rule"] == rule
            if not sel.any():
                continue
            values = pd.to_numeric(table.loc[sel, column], errors="coerce")
            values = values[np.isfinite(values)]
            x = i + (k - (len(combos) - 1) / 2) * width
            if values.empty:
                _na_box(ax, x, width * 0.9, _why_missing(table[sel], column, rule))
                continue
            v = float(values.iloc[0])
            label = (
                scorer
                if rule is None
                else f"{scorer}, {rule} threshold ({_threshold_text(table, scorer, rule)})"
            )
            bar = ax.bar(
                [x],
                [v],
                width * 0.9,
                color=colours(scorers.index(scorer) % 10),
                hatch=RULE_HATCH.get(rule),
                edgecolor="black",
                lw=0.5,
                label=label,
            )
            bar.patches[0].set_gid(f"{scorer}|{text}|{rule or ''}")
            ax.annotate(
                f"{v:.2f}",
                (x, max(v, 0.0)),
                textcoords="offset points",
                xytext=(0, 2),
                ha="center",
                fontsize=7,
            )


def _text_label(table: pd.DataFrame, text: str) -> str:
    counts = table.loc[
        table["text"] == text, [c for c in ("n", "n_toxic") if c in table]
    ].drop_duplicates()
    if len(counts) == 1 and counts.shape[1] == 2 and counts.notna().all(axis=None):
        n, toxic = counts.iloc[0]
        return f"{text}\n(n = {int(n)}, toxic = {int(toxic)})"
    return text


@register_figure("scorer_calibration", category="Scorer", order=70)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """AUC, Spearman and kappa (fixed and matched threshold) per text kind and scorer."""
    title = "Toxicity scorer against the reference (Perspective) scores"
    table = tables.calibration
    fig = new_figure(14, 4.8)
    axes = fig.subplots(1, len(PANELS))
    if table is None or table.empty:
        for ax, (_, panel_title, _, _) in zip(axes, PANELS, strict=True):
            ax.set_title(panel_title, fontsize=10)
            no_data(
                ax,
                "no scorer calibration table"
                if table is None
                else "the calibration table is empty",
            )
        return finish(fig, title)
    texts = sorted(table["text"].dropna().unique(), key=lambda t: (list(TEXT_KINDS) + [t]).index(t))
    scorers = list(dict.fromkeys(table["scorer"]))
    rules = [r for r in THRESHOLD_RULES if r in set(table["threshold_rule"])] or [None]
    for ax, (column, panel_title, ref, ylabel) in zip(axes, PANELS, strict=True):
        _bars(ax, table, column, texts, scorers, rules if column == "kappa" else [None])
        ax.axhline(ref, color="black", ls=":", lw=0.9)
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.08)
        ax.set_xticks(range(len(texts)))
        ax.set_xticklabels([_text_label(table, t) for t in texts], fontsize=8)
        ax.set_xlim(-0.6, len(texts) - 0.4)
        ax.set_title(panel_title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    # the kappa panel's entries name the scorers' colours and the thresholds
    legend_below(fig, [axes[-1]] if axes[-1].get_legend_handles_labels()[1] else axes, ncol=4)
    return finish(fig, title + " (dotted: no better than chance)")
