"""The README's tables of a finished study, in Markdown, from its ``tables/`` folder.

    .venv/bin/python bench/readme_tables.py --tables results/default/tables
        [--toxicity rtp] [--bias bold] [--intrinsic crows_pairs]

Prints two tables: every model against its parent (held-out perplexity and its ratio with
the interval, degradation, the expected maximum toxicity (EMT) of each prompt set with its
paired difference and interval), and every model against its matched controls (both
perplexity ratios, both teacher perplexities of the continuations, the EMT change to the
parent and the excess over each control with interval and p, and the intrinsic stereotype
share's excess). Rows pooled over control draws (``draws`` > 1) are marked. Every number of
"What the default study found" in the README comes from this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

EMT = "expected_max_toxicity"


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return frame.fillna({"group": ""}) if "group" in frame else frame


def signed(value: float, digits: int = 3) -> str:
    """``+0.012`` / ``−0.034`` (a true minus sign)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def ratio(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _row(frame: pd.DataFrame, promptset: str, metric: str, **match: str) -> pd.Series | None:
    chosen = frame[(frame["promptset"] == promptset) & (frame["group"] == "")]
    chosen = chosen[chosen["metric"] == metric]
    for column, value in match.items():
        chosen = chosen[chosen[column] == value]
    return None if chosen.empty else chosen.iloc[0]


def _diff(row: pd.Series | None, digits: int = 3, p: bool = False) -> str:
    if row is None:
        return "–"
    text = f"{signed(row['diff'], digits)} ({signed(row['ci_low'], digits)} to "
    text += f"{signed(row['ci_high'], digits)}"
    return text + (f", p {row['p_value']:.2f})" if p else ")")


def parents_table(tables: Path, toxicity: str, bias: str) -> list[str]:
    models = _read(tables / "models.csv")
    comparisons, metrics = _read(tables / "comparisons.csv"), _read(tables / "metrics.csv")
    lines = [
        "| model | parent | held-out perplexity (× parent, 95 % interval) | degradation | "
        "RTP EMT (diff to parent, 95 % interval) | bias-prompt EMT (diff, interval) |",
        "|---|---|---|---|---|---|",
    ]
    for _, m in models.iterrows():
        ppl = f"{m['perplexity']:,.1f}" if m["perplexity"] < 1000 else f"{m['perplexity']:,.0f}"
        if pd.notna(m["perplexity_ratio"]):
            ppl += f" (× {ratio(m['perplexity_ratio'])}, {ratio(m['perplexity_ratio_low'])}"
            ppl += f"–{ratio(m['perplexity_ratio_high'])})"
        cells = []
        for promptset in (toxicity, bias):
            row = _row(comparisons, promptset, EMT, model=m["model"])
            if row is None:
                alone = _row(metrics, promptset, EMT, model=m["model"])
                cells.append("–" if alone is None else f"{alone['value']:.3f}")
            else:
                interval = f"{signed(row['ci_low'])} to {signed(row['ci_high'])}"
                cells.append(f"{row['value']:.3f} ({signed(row['diff'])}, {interval})")
        degradation = m["degradation"] if isinstance(m["degradation"], str) else "–"
        parent = m["parent"] if isinstance(m["parent"], str) else "–"
        lines.append(f"| {m['model']} | {parent} | {ppl} | {degradation} | {' | '.join(cells)} |")
    return lines


def controls_table(tables: Path, toxicity: str, bias: str, intrinsic: str) -> list[str]:
    models = _read(tables / "models.csv").set_index("model")
    comparisons, matched = _read(tables / "comparisons.csv"), _read(tables / "matched_controls.csv")
    lines = [
        "| model − control | × parent's perplexity (model / control) | teacher perplexity of "
        "RTP continuations (model / control) | RTP EMT: change to parent | RTP EMT: model − "
        "control (95 % interval, p) | bias-prompt EMT: model − control | "
        "CrowS-Pairs stereo share: model − control (points) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (model, control), part in matched.groupby(["model", "control"], sort=False):
        first = part.iloc[0]
        teacher = f"{toxicity}_teacher_perplexity"
        quality = "–"
        if control in models.index and teacher in models:
            quality = f"{models.at[model, teacher]:.1f} / {models.at[control, teacher]:.1f}"
        change = _diff(_row(comparisons, toxicity, EMT, model=model))
        ratios = f"{ratio(first['perplexity_ratio'])} / {ratio(first['control_perplexity_ratio'])}"
        cells = [
            _diff(_row(part, toxicity, EMT), p=True),
            _diff(_row(part, bias, EMT), p=True),
            _diff(_row(part, intrinsic, f"{intrinsic}_stereo_share"), digits=1, p=True),
        ]
        name = f"{model} − {control}"
        lines.append(f"| {name} | {ratios} | {quality} | {change} | {' | '.join(cells)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=Path, default=Path("results/default/tables"))
    parser.add_argument("--toxicity", default="rtp")
    parser.add_argument("--bias", default="bold")
    parser.add_argument("--intrinsic", default="crows_pairs")
    args = parser.parse_args()
    print("\n".join(parents_table(args.tables, args.toxicity, args.bias)))
    print()
    print("\n".join(controls_table(args.tables, args.toxicity, args.bias, args.intrinsic)))


if __name__ == "__main__":
    main()
