"""How many prompts and samples a study needs for a given width of its paired EMT intervals.

    .venv/bin/python bench/power.py --study-dir DIR [--study default] [--promptset rtp]
        [--target 0.05]

For every model with a parent in a finished study (``tables/models.csv``) and every sample count
``K`` from 1 to the number of samples the study drew, this takes each prompt's maximum toxicity
over its first ``K`` samples, for the model and for its parent, and prints the standard deviation
``sd`` over prompts of their difference (the paired EMT difference at ``K`` samples is its mean),
the normal-approximation 95 % half-width at the study's number of prompts ``N``,
``1.96 sd / sqrt(N)``, and the number of prompts and of continuations (prompts x K) a half-width of
``--target`` needs, ``(1.96 sd / target)^2``. The study's own interval (a paired bootstrap over
prompts, ``tables/comparisons.csv``) is printed beside it for ``K`` = all samples. Sample ``k`` of
a prompt is drawn with the same random numbers at every ``K`` (``compfair.sampling``), so the first
``K`` samples are exactly what a study with ``samples: K`` would draw.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
from study_files import parent_pairs

from compfair.layout import Layout
from compfair.tables.prompts import per_prompt_statistics

Z95 = 1.959964


def prompt_maxima(scores: pd.DataFrame, k: int) -> pd.Series:
    """Each prompt's maximum toxicity over its first ``k`` samples (index: ``prompt_id``)."""
    stats = per_prompt_statistics(scores[scores["sample"] < k])
    return stats.set_index("prompt_id")["max_toxicity"]


def power_rows(model: pd.DataFrame, parent: pd.DataFrame, target: float) -> list[dict]:
    """One row per sample count: sd of the paired difference, half-width, prompts needed."""
    rows = []
    for k in range(1, int(model["sample"].max()) + 2):
        diff = (prompt_maxima(model, k) - prompt_maxima(parent, k)).dropna()
        sd = float(diff.std(ddof=1))
        needed = math.ceil((Z95 * sd / target) ** 2)
        rows.append(
            {
                "K": k,
                "N": len(diff),
                "diff": float(diff.mean()),
                "sd": sd,
                "half_width": Z95 * sd / math.sqrt(len(diff)),
                "prompts_needed": needed,
                "continuations_needed": needed * k,
            }
        )
    return rows


def bootstrap_half_width(comparisons: pd.DataFrame, model: str, promptset: str) -> float:
    """Half the width of the study's own paired-bootstrap EMT interval (NaN when absent)."""
    row = comparisons[
        (comparisons["model"] == model)
        & (comparisons["promptset"] == promptset)
        & (comparisons["metric"] == "expected_max_toxicity")
        & comparisons["group"].isna()
    ]
    if row.empty:
        return float("nan")
    return float((row["ci_high"].iloc[0] - row["ci_low"].iloc[0]) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study-dir", type=Path, required=True)
    parser.add_argument("--study", default="default")
    parser.add_argument("--promptset", default="rtp")
    parser.add_argument("--target", type=float, default=0.05)
    args = parser.parse_args()
    comparisons = pd.read_csv(Layout(args.study, args.study_dir).table("comparisons.csv"))
    print(f"prompt set {args.promptset}; target half-width {args.target}")
    print(
        "| seed | model | flagged | K | N | diff | sd | half-width (normal) "
        "| half-width (bootstrap) | prompts needed | continuations needed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed, row, mine, theirs in parent_pairs(
        args.study_dir, args.study, "scores", args.promptset
    ):
        lines = power_rows(pd.read_csv(mine), pd.read_csv(theirs), args.target)
        for line in lines:
            boot = (
                f"{bootstrap_half_width(comparisons, row.model, args.promptset):.3f}"
                if line is lines[-1]
                else ""
            )
            print(
                f"| {seed} | {row.model} | {'yes' if row.flagged else 'no'} "
                f"| {line['K']} | {line['N']} | {line['diff']:+.3f} | {line['sd']:.3f} "
                f"| {line['half_width']:.3f} | {boot} | {line['prompts_needed']} "
                f"| {line['continuations_needed']} |"
            )


if __name__ == "__main__":
    main()
