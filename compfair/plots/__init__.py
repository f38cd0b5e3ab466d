"""The report's figures, as plug-ins registered by name.

A figure is one module of this package with one function::

    @register_figure("contrasts", category="Toxicity", caption="report/contrasts.rst", order=30)
    def draw(tables: Tables, out_path: Path, options: FigureOptions) -> Figure:
        fig = new_figure(8, 5)
        ...                       # draw from tables.metrics / comparisons / models
        return fig                # the registry saves it to out_path (atomically)

plus its caption, ``report/<name>.rst``. Every module of the package is
imported when the registry is first read (:func:`load_builtin_figures`), so
adding a figure is one new file and its caption: the rule's outputs, the
report's entries and :func:`plot_all` take their list from
:func:`figure_names`.

A draw function returns the :class:`matplotlib.figure.Figure` it drew
(tests read the drawn data back from its artists) and leaves saving to the
registry; a function that writes ``out_path`` itself (atomically) returns
None. Data a figure needs but the tables lack are said in the panel ("no
data: ..."); a draw function raises only for a programming error.

The package imports pandas and matplotlib (no pyplot, no torch): figures
are drawn on the Agg canvas.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from compfair.io import atomic_path
from compfair.plots.data import (
    FigureOptions,
    Tables,
    group_domains_from_prompts,
    read_tables,
)
from compfair.plots.style import DPI
from compfair.plugins import Registry

log = logging.getLogger(__name__)

__all__ = [
    "FIGURES",
    "FigureOptions",
    "FigureSpec",
    "Tables",
    "draw_figure",
    "figure_names",
    "figure_specs",
    "group_domains_from_prompts",
    "load_builtin_figures",
    "plot_all",
    "read_tables",
    "register_figure",
    "save_figure",
    "unregister_figure",
]

#: A figure's drawing function.
DrawFunction = Callable[[Tables, Path, FigureOptions], Figure | None]
#: Report categories, in the order the report lists them.
CATEGORIES = ("Toxicity", "Quality", "Bias", "Scorer")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure: its file stem, drawing function, report category,
    caption (a path relative to the repository root) and place in the report."""

    name: str
    draw: DrawFunction
    category: str
    caption: str
    order: int


#: Registered figures by name (the built-in ones appear on first read); entries are specs,
#: defined by their draw functions.
FIGURES: Registry[FigureSpec] = Registry(
    "figure", None, __name__, skip_private=True, defined_by=lambda spec: spec.draw
)


def register_figure(
    name: str, *, category: str, caption: str | None = None, order: int = 100
) -> Callable[[DrawFunction], DrawFunction]:
    """Function decorator: register ``draw(tables, out_path, options)`` as figure ``name``.

    ``caption`` defaults to ``report/<name>.rst``; ``order`` places the figure
    in the report (then by name). Raises ``ValueError`` for a name that is not
    a lower-case word, an unknown category, or a name registered by another
    function.
    """
    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r}: use lower-case letters, digits and _")
    if category not in CATEGORIES:
        raise ValueError(f"figure {name!r}: category {category!r} not in {CATEGORIES}")

    def decorate(draw: DrawFunction) -> DrawFunction:
        if not callable(draw):
            raise TypeError(f"figure {name!r}: {draw!r} is not callable")
        FIGURES.add(name, FigureSpec(name, draw, category, caption or f"report/{name}.rst", order))
        return draw

    return decorate


def unregister_figure(name: str) -> None:
    """Remove figure ``name`` from the registry (``KeyError`` if it is not there)."""
    del FIGURES[name]


def load_builtin_figures() -> Registry[FigureSpec]:
    """Import every module of this package (once; each registers its figures); return the registry."""
    FIGURES.load()
    return FIGURES


def figure_specs() -> list[FigureSpec]:
    """Every registered figure, in report order (``order``, then name)."""
    return sorted(FIGURES.values(), key=lambda s: (s.order, s.name))


def figure_names() -> list[str]:
    """The registered figure names, in report order: the rule's outputs are ``<name>.png``."""
    return [spec.name for spec in figure_specs()]


def save_figure(fig: Figure, out_path: Path) -> Path:
    """Write ``fig`` to ``out_path`` atomically (PNG at :data:`DPI`); return the path."""
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=DPI)
    log.info("wrote %s", out_path)
    return out_path


def draw_figure(name: str, tables: Tables, out_path: Path, options: FigureOptions) -> Path:
    """Draw figure ``name`` into ``out_path``; for an unknown name,
    :class:`~compfair.plugins.UnknownNameError` (a ``KeyError``) listing the known figures."""
    out_path = Path(out_path)
    fig = FIGURES.lookup(name).draw(tables, out_path, options)
    if fig is None:
        if not out_path.is_file():
            raise RuntimeError(f"figure {name!r} returned no Figure and wrote no {out_path}")
        return out_path
    return save_figure(fig, out_path)


def plot_all(tables: Tables, out_dir: Path, options: FigureOptions) -> list[Path]:
    """Draw every registered figure into ``out_dir/<name>.png``; return the paths in
    report order."""
    out_dir = Path(out_dir)
    return [draw_figure(n, tables, out_dir / f"{n}.png", options) for n in figure_names()]
