"""The files of each model and its parent in a finished study, for the bench scripts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd


def parent_pairs(results: Path, subdir: str, name: str) -> Iterator[tuple[str, object, Path, Path]]:
    """``(seed, models.csv row, model file, parent file)`` for every model with a parent and seed
    where both ``<results>/<subdir>/seed-*/<model>/<name>`` files exist."""
    models = pd.read_csv(results / "tables" / "models.csv").dropna(subset=["parent"])
    for seed_dir in sorted((results / subdir).glob("seed-*")):
        for row in models.itertuples():
            mine, theirs = seed_dir / row.model / name, seed_dir / row.parent / name
            if mine.is_file() and theirs.is_file():
                yield seed_dir.name, row, mine, theirs
