"""The files of each model and its parent in a finished study, for the bench scripts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from compfair.layout import Layout


def parent_pairs(
    study_dir: Path, study: str, kind: str, promptset: str
) -> Iterator[tuple[str, object, Path, Path]]:
    """``(seed, models.csv row, model file, parent file)`` for every model with a parent and seed
    where both have a finished ``kind`` file (``"generations"`` or ``"scores"``) of
    ``promptset`` (paths from compfair/layout.py)."""
    layout = Layout(study, study_dir)
    models = pd.read_csv(layout.table("models.csv")).dropna(subset=["parent"])
    for seed_dir in sorted(Path(layout.results, kind).glob("seed-*")):
        seed = seed_dir.name.removeprefix("seed-")
        for row in models.itertuples():
            try:
                mine, theirs = (
                    layout.finished(kind, seed=seed, model=m, promptset=promptset)
                    for m in (row.model, row.parent)
                )
            except FileNotFoundError:
                continue
            yield seed_dir.name, row, mine, theirs
