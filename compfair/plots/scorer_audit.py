"""What the toxicity scorer says of neutral sentences that only name a group.

From ``tables/scorer_audit.csv`` (:mod:`compfair.audit`): one panel per
domain, one bar per group at its mean scorer output over the neutral
templates (error bars: ± one standard error over the templates), the share
of templates scored toxic written at the bar's end, and the domain's spread
(highest minus lowest group mean) in the panel title. A fair scorer gives
every group the same low score; a long bar means the scorer rates the group's
name itself as toxic, so that group's measured toxicity is inflated.
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
from compfair.plots.style import finish, legend_below, new_figure, no_data, pretty


def _panel(ax: Axes, part: pd.DataFrame, scorers: list[str]) -> None:
    groups = list(part.groupby("group")["mean"].max().sort_values(ascending=False).index)
    height = 0.8 / len(scorers)
    colours = matplotlib.colormaps["tab10"]
    for k, scorer in enumerate(scorers):
        rows = (
            part[part["scorer"] == scorer]
            .drop_duplicates("group")
            .set_index("group")
            .reindex(groups)
        )
        y = np.arange(len(groups)) + (k - (len(scorers) - 1) / 2) * height
        ok = rows["mean"].notna().to_numpy()
        n = pd.to_numeric(
            rows.get("n_templates", pd.Series(np.nan, index=rows.index)), errors="coerce"
        )
        se = pd.to_numeric(
            rows.get("sd", pd.Series(np.nan, index=rows.index)), errors="coerce"
        ) / np.sqrt(n)
        bars = ax.barh(
            y[ok],
            rows["mean"][ok],
            height * 0.9,
            color=colours(k % 10),
            edgecolor="black",
            lw=0.4,
            label=scorer,
            xerr=se[ok].fillna(0.0).to_numpy(),
            error_kw={"lw": 0.8, "capsize": 2},
        )
        for patch, group in zip(bars.patches, np.array(groups)[ok], strict=True):
            patch.set_gid(f"{scorer}|{group}")
        if "share_toxic" in rows:
            for yy, (mean, share) in zip(
                y[ok], rows.loc[ok, ["mean", "share_toxic"]].to_numpy(), strict=True
            ):
                if np.isfinite(share):
                    ax.annotate(
                        f"{share:.0%} toxic",
                        (mean, yy),
                        textcoords="offset points",
                        xytext=(9, 0),
                        va="center",
                        fontsize=6.5,
                        color="0.3",
                    )
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels([pretty(g) for g in groups], fontsize=8)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.2)
    ax.tick_params(labelsize=8)


def _spread(part: pd.DataFrame) -> str:
    if "domain_spread" in part and part["domain_spread"].notna().any():
        values = [f"{v:.3f}" for v in part.drop_duplicates("scorer")["domain_spread"]]
        return ", ".join(values)
    means = part.groupby("scorer")["mean"]
    return ", ".join(f"{v:.3f}" for v in (means.max() - means.min()))


@register_figure("scorer_audit", category="Scorer", order=80)
def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
    """Mean scorer output on neutral sentences naming each group, a panel per domain."""
    title = "Toxicity scorer on neutral sentences that name a group (bars: mean ± 1 s.e. over the templates)"
    audit = tables.audit
    if audit is None or audit.empty:
        fig = new_figure(7, 3)
        no_data(
            fig.add_subplot(),
            "no scorer audit table (tables/scorer_audit.csv)"
            if audit is None
            else "the scorer audit table is empty",
        )
        return finish(fig, title)
    domains = sorted(audit["domain"].dropna().unique())
    scorers = list(dict.fromkeys(audit["scorer"]))
    ncols = min(3, len(domains))
    nrows = -(-len(domains) // ncols)
    sizes = [audit.loc[audit["domain"] == d, "group"].nunique() for d in domains]
    fig = new_figure(4.6 * ncols, nrows * (0.28 * max(sizes) * len(scorers) + 1.4) + 1.0)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True).flat
    for ax, domain in zip(axes, domains, strict=False):
        part = audit[audit["domain"] == domain]
        _panel(ax, part, scorers)
        ax.set_title(f"{pretty(domain)} (spread {_spread(part)})", fontsize=9.5)
    for ax in list(axes)[len(domains) :]:
        ax.set_visible(False)
    fig.supxlabel("mean scorer output on the neutral sentences (0–1)", fontsize=9)
    if len(scorers) > 1:
        legend_below(fig, fig.axes, ncol=len(scorers))
    return finish(fig, title)
