"""How much of its parent's text each model of a finished study writes again.

    .venv/bin/python bench/coupling.py --study-dir DIR [--study default] [--promptset rtp]

Every model draws with its parent's random numbers per token (``compfair.sampling``), so a
model whose next-token distributions barely moved writes many continuations exactly as its
parent does, and its paired differences are measured with little noise. For each model with a
parent, per seed, this prints the continuations identical to the parent's (same prompt and
sample) and the mean share of the parent's characters before the first difference. Reads
``tables/models.csv`` and ``generations/`` of the study; prints one table.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from study_files import parent_pairs

from compfair.quality import read_generations


def continuations(path: Path) -> dict[tuple[str, int], str]:
    return {(r["prompt_id"], int(r["sample"])): r["continuation"] for r in read_generations(path)}


def compare(model: Path, parent: Path) -> tuple[int, int, float]:
    """(identical, shared, mean shared-prefix share) of two generations files."""
    mine, theirs = continuations(model), continuations(parent)
    keys = sorted(mine.keys() & theirs.keys())
    same = sum(mine[k] == theirs[k] for k in keys)
    prefix = [
        len(os.path.commonprefix([mine[k], theirs[k]])) / max(1, len(theirs[k])) for k in keys
    ]
    return same, len(keys), sum(prefix) / max(1, len(prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study-dir", type=Path, required=True)
    parser.add_argument("--study", default="default")
    parser.add_argument("--promptset", default="rtp")
    args = parser.parse_args()
    print("| seed | model | parent | identical to the parent's | shared prefix |")
    print("|---|---|---|---|---|")
    for seed, row, mine, theirs in parent_pairs(
        args.study_dir, args.study, "generations", args.promptset
    ):
        same, n, prefix = compare(mine, theirs)
        print(f"| {seed} | {row.model} | {row.parent} | {same} of {n} | {prefix:.0%} |")


if __name__ == "__main__":
    main()
