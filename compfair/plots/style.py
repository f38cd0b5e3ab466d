"""How each model looks, the same in every figure, and the drawing helpers they share.

A model's style comes from ``models.csv`` (display order, family, method,
level, parent, flag): the base model is dark grey, the teacher blue; every
other *series* (the model name without its level, e.g. ``magnitude`` for
``magnitude-0.50``, ``kd`` for ``kd-0.25``) gets the next colour of
:data:`SERIES_COLOURS`, in display order, and its models are shades of it,
lighter for milder compression. The marker says the family. A flagged model
(a quality guard fired) is drawn hollow and labelled ``(flagged)``.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot,
so drawing needs no display and leaves no global state behind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.colors
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure

from compfair.plots.data import Tables, blank

DPI = 120
FLAGGED = "(flagged)"
BASE_COLOUR = "#4d4d4d"
TEACHER_COLOUR = "#1f77b4"
#: Colours of the other series, in display order (no blue or grey: those are base and teacher).
SERIES_COLOURS = (
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7b4173",
    "#637939",
    "#843c39",
    "#393b79",
)
#: Marker per family.
FAMILY_MARKERS = {
    "base": "p",
    "finetuned": "s",
    "distillation": "*",
    "pruning": "o",
    "quantization": "^",
    "degradation": "d",
    "control": "X",
    "reference": "h",
}
#: Colours of the matched controls, by kind: neutral, so they read as a baseline.
CONTROL_COLOURS = {"noise": "#7f7f7f", "random": "#a68a00"}
#: Families whose models have levels, with how their level axis reads:
#: (axis label, whether a *smaller* level is *more* compression).
LEVEL_FAMILIES = {
    "pruning": ("pruning level (share of weights, heads, channels or layers removed)", False),
    "quantization": ("bits per weight", True),
    "degradation": ("noise scale (x each matrix's RMS)", False),
    "distillation": ("share of the teacher's layers kept", True),
}


@dataclass(frozen=True)
class ModelStyle:
    """How one model is drawn, and what ``models.csv`` says of it."""

    model: str
    family: str
    method: str
    level: str | None
    parent: str | None
    series: str
    colour: tuple[float, float, float, float]
    marker: str
    flagged: bool = False
    flag_reasons: str = ""

    @property
    def label(self) -> str:
        """The model's name, with ``(flagged)`` after a flagged one."""
        return f"{self.model} {FLAGGED}" if self.flagged else self.model

    @property
    def level_number(self) -> float | None:
        """The level as a number (``"0.50"`` -> 0.5, ``"4"`` -> 4.0); None for ``2of4``, blank."""
        return level_number(self.level)

    @property
    def face(self) -> object:
        """Face colour of the model's markers and bars: ``"none"`` (hollow) when flagged."""
        return "none" if self.flagged else self.colour

    def marker_kw(self, size: float = 7.0) -> dict:
        """Keyword arguments of ``plot``/``errorbar`` for the model's marker."""
        size *= 1.5 if self.marker == "*" else 1.0
        return {
            "marker": self.marker,
            "ms": size,
            "color": self.colour,
            "mfc": "none" if self.flagged else self.colour,
            "mec": self.colour,
            "mew": 1.6 if self.flagged else 0.7,
        }

    def bar_kw(self) -> dict:
        """Keyword arguments of ``bar``/``barh``: filled, or hollow and hatched when flagged."""
        return {
            "color": self.face,
            "edgecolor": self.colour if self.flagged else "black",
            "hatch": "///" if self.flagged else None,
            "linewidth": 1.2 if self.flagged else 0.5,
        }


def level_number(level: object) -> float | None:
    """A level label as a number, or None when it is blank or not a number (``2of4``)."""
    if level is None or (isinstance(level, float) and math.isnan(level)):
        return None
    try:
        value = float(str(level))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def series_of(model: str, method: str | None, level: str | None, family: str = "") -> str:
    """The series a model belongs to: its name without ``-<level>`` (else the name); every
    matched control of one kind is one series (``noise controls``)."""
    if family == "control":
        return f"{method} controls"
    if level and model.endswith(f"-{level}") and len(model) > len(level) + 1:
        return model[: -len(level) - 1]
    return model


def _shade(colour: str, t: float) -> tuple[float, float, float, float]:
    """``colour`` mixed with white: ``t`` 1 the colour itself, 0 the lightest shade (70 %)."""
    rgb = np.array(matplotlib.colors.to_rgb(colour))
    mix = 0.7 + 0.3 * t
    return (*(1 - mix + mix * rgb), 1.0)


def compression_rank(family: str, levels: Sequence[str | None]) -> list[int]:
    """Rank of each level from mildest (0) to strongest compression; non-numbers last."""
    _, smaller_is_more = LEVEL_FAMILIES.get(family, ("", False))

    def key(i: int) -> tuple:
        number = level_number(levels[i])
        if number is None:
            return (1, 0.0, str(levels[i]))
        return (0, -number if smaller_is_more else number, "")

    order = sorted(range(len(levels)), key=key)
    ranks = [0] * len(levels)
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks


def _model_records(tables: Tables) -> pd.DataFrame:
    """models.csv, then models only the metrics know of (family from there, else reference)."""
    models = tables.models
    rows = [models[["model", "family", "method", "level", "parent"]]]
    extra = [
        m for m in dict.fromkeys(tables.metrics.get("model", [])) if m not in set(models["model"])
    ]
    if extra:
        found = tables.metrics.drop_duplicates("model").set_index("model")
        rows.append(
            pd.DataFrame(
                {
                    "model": extra,
                    "family": [found.get("family", {}).get(m) or "reference" for m in extra],
                    "method": [found.get("method", {}).get(m) for m in extra],
                    "level": [found.get("level", {}).get(m) for m in extra],
                    "parent": [found.get("parent", {}).get(m) for m in extra],
                }
            )
        )
    out = pd.concat(rows, ignore_index=True).drop_duplicates("model")
    for column in ("family", "method", "level", "parent"):
        # object dtype: pandas' string dtype would turn None back into NaN
        out[column] = pd.Series(
            [None if is_blank(v) else str(v) for v in out[column]], index=out.index, dtype=object
        )
    flagged = set(models.loc[models.get("flagged", pd.Series(False, index=models.index)), "model"])
    for frame in (tables.metrics, tables.comparisons):
        if "flagged" in frame and not frame.empty:
            flagged |= set(frame.loc[frame["flagged"], "model"])
    out["flagged"] = out["model"].isin(flagged)
    reasons = models.set_index("model")["flag_reasons"] if "flag_reasons" in models else {}
    out["flag_reasons"] = [str(reasons.get(m) or "") for m in out["model"]]
    return out


def model_styles(tables: Tables) -> dict[str, ModelStyle]:
    """The style of every model of the study, in display order (``models.csv``'s)."""
    records = _model_records(tables)
    records["family"] = records["family"].fillna("reference")
    records["series"] = [
        series_of(m, me, lv, fam)
        for m, me, lv, fam in zip(
            records["model"], records["method"], records["level"], records["family"], strict=True
        )
    ]
    colours: dict[str, str] = {}
    for family, series in zip(records["family"], records["series"], strict=True):
        if series not in colours:
            if family == "base":
                colours[series] = BASE_COLOUR
            elif family == "finetuned":
                colours[series] = TEACHER_COLOUR
            elif family == "control":
                colours[series] = CONTROL_COLOURS.get(series.split()[0], "#999999")
            else:
                fixed = (BASE_COLOUR, TEACHER_COLOUR, *CONTROL_COLOURS.values())
                n = sum(c not in fixed for c in colours.values())
                colours[series] = SERIES_COLOURS[n % len(SERIES_COLOURS)]
    shades: dict[str, float] = {}
    for _, part in records.groupby("series", sort=False):
        ranks = compression_rank(part["family"].iloc[0], list(part["level"]))
        top = max(max(ranks), 1)
        for model, rank in zip(part["model"], ranks, strict=True):
            shades[model] = 1.0 if len(part) == 1 else rank / top
    styles = {}
    for row in records.itertuples(index=False):
        styles[row.model] = ModelStyle(
            model=row.model,
            family=row.family,
            method=row.method or "",
            level=row.level,
            parent=row.parent,
            series=row.series,
            colour=_shade(colours[row.series], shades[row.model]),
            marker=FAMILY_MARKERS.get(row.family, "X"),
            flagged=bool(row.flagged),
            flag_reasons=row.flag_reasons,
        )
    return styles


def series_colour(styles: Mapping[str, ModelStyle], series: str) -> tuple:
    """The full (strongest) colour of a series: that of its most compressed model."""
    members = [s for s in styles.values() if s.series == series]
    ranks = compression_rank(members[0].family, [s.level for s in members]) if members else []
    return members[int(np.argmax(ranks))].colour if members else (0.5, 0.5, 0.5, 1.0)


# --------------------------------------------------------------------------- drawing helpers


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches (capped at 24 x 30) with constrained
    layout (titles, legends and colour bars outside the axes get their room), without pyplot."""
    return Figure(figsize=(min(width, 24.0), min(height, 30.0)), dpi=DPI, layout="constrained")


def no_data(ax: Axes, what: str) -> None:
    """Write "no data" and why in the middle of ``ax``, and hide its ticks."""
    ax.text(
        0.5,
        0.5,
        f"no data\n{what}",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.35",
        fontsize=9,
        wrap=True,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def plain_log_axis(axis: Axis) -> None:
    """A log axis with plain numbers (0.5, 1, 2, 5) rather than powers of ten."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def legend_entries(axes: Iterable[Axes]) -> dict[str, object]:
    """Label -> handle over ``axes``, first one wins, ``_``-labels skipped."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                seen.setdefault(label, handle)
    return seen


def legend_below(
    fig: Figure, axes: Iterable[Axes], ncol: int = 5, fontsize: float = 8.5, note: str = ""
) -> None:
    """One legend under all panels, entries deduplicated by label; ``note`` (e.g. the
    flagged models, see :func:`flag_note`) is its heading."""
    seen = legend_entries(axes)
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="outside lower center",
            ncol=max(1, min(ncol, len(seen))),
            fontsize=fontsize,
            frameon=False,
            title=note or None,
            title_fontsize=7.5,
        )


def legend_right(ax: Axes, axes: Iterable[Axes] | None = None, fontsize: float = 7.5) -> None:
    """A legend of ``axes`` (default: ``ax``) right of ``ax``, outside the data."""
    seen = legend_entries([ax] if axes is None else axes)
    if seen:
        ax.legend(
            list(seen.values()),
            list(seen),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=fontsize,
            frameon=False,
        )


def finish(fig: Figure, title: str, note: str = "") -> Figure:
    """Title the figure and put ``note`` (e.g. the flagged models) under everything
    (a figure whose legend is below gives the note to :func:`legend_below` instead)."""
    fig.suptitle(title, fontsize=11)
    if note:
        fig.supxlabel(note, fontsize=7.5, color="0.3")
    return fig


def flag_note(styles: Mapping[str, ModelStyle], shown: Iterable[str]) -> str:
    """``"flagged (hollow): m1: reason; m2: reason"`` for the flagged models among ``shown``."""
    parts = []
    for model in dict.fromkeys(shown):
        style = styles.get(model)
        if style is not None and style.flagged:
            reason = style.flag_reasons.split(";")[0].strip()
            parts.append(f"{model}: {reason}" if reason else model)
    if not parts:
        return ""
    lines, line = [], "flagged by the quality guards (drawn hollow or hatched):"
    for part in parts:
        if len(line) + len(part) > 150:
            lines.append(line)
            line = "  "
        line += f" {part};"
    lines.append(line.rstrip(";"))
    return "\n".join(lines)


def pretty(name: str) -> str:
    """A group, domain or metric name for a label: underscores as spaces."""
    return str(name).replace("_", " ")


def is_blank(value: object) -> bool:
    """True for None, NaN and empty strings."""
    return bool(blank(pd.Series([value])).iloc[0])
