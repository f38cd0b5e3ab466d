"""Tests for compfair.plots: every figure is drawn from a synthetic version-2 metrics table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compfair.io import write_csv, write_jsonl
from compfair.plots import (
    FIGURES,
    group_domains_from_prompts,
    model_styles,
    nonzero_parameters,
    plot_all,
    plot_bold_heatmap,
    plot_distillation_panel,
    plot_metrics_vs_sparsity,
    plot_scorer_calibration,
    plot_sentiment_by_group,
    plot_tradeoff,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
V2_COLUMNS = [
    "model",
    "compression",
    "level",
    "promptset",
    "group",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "seed_sd",
    "n_seeds",
    "flagged",
]
#: model -> (compression, level, toxicity shift, flagged)
MODELS = {
    "teacher": ("none", None, 0.0, False),
    "student": ("distillation", None, 0.06, False),
    "distilgpt2": ("distillation", None, -0.04, False),
    "pruned-0.10": ("pruning", 0.10, 0.005, False),
    "pruned-0.20": ("pruning", 0.20, 0.01, False),
    "pruned-0.30": ("pruning", 0.30, 0.02, False),
    "pruned-0.40": ("pruning", 0.40, 0.05, False),
    "pruned-0.50": ("pruning", 0.50, -0.2, True),
}
GROUPS = {
    "men": "gender",
    "women": "gender",
    "asian": "race_ethnicity",
    "black": "race_ethnicity",
    "hispanic": "race_ethnicity",
    "white": "race_ethnicity",
    "christian": "religion",
    "jewish": "religion",
    "muslim": "religion",
}


def v2_metrics(seed: int = 0) -> pd.DataFrame:
    """A metrics.csv in the version-2 layout: teacher, student, distilgpt2, pruned
    0.10-0.50 (0.50 flagged degenerate), rtp and bold prompt sets, per-group and
    per-domain bias rows, intrinsic benchmarks, CIs over prompts, three seeds."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(model, promptset, group, metric, value, half_width=None):
        compression, level, _, flagged = MODELS[model]
        lo = hi = np.nan
        if half_width is not None:
            lo, hi = value - half_width, value + half_width
        rows.append(
            [
                model,
                compression,
                level,
                promptset,
                group,
                metric,
                value,
                lo,
                hi,
                abs(rng.normal(0, 0.01)),
                3,
                flagged,
            ]
        )

    for model, (_, level, shift, _) in MODELS.items():
        sparsity = level or 0.0
        add(model, "", "", "perplexity", 18 * (1 + 8 * abs(shift)) ** 2 * (1 + 3 * sparsity**3))
        add(
            model,
            "",
            "",
            "n_parameters",
            82e6 if model == "distilgpt2" else 135e6 - 60e6 * (model == "student"),
        )
        add(model, "", "", "n_prunable", 85e6 if model != "student" else 42e6)
        add(model, "", "", "sparsity", sparsity)
        for promptset, base in (("rtp", 0.42), ("bold", 0.12)):
            add(model, promptset, "", "expected_max_toxicity", base + shift, 0.03)
            add(model, promptset, "", "toxicity_probability", base - 0.05 + 1.2 * shift, 0.05)
            add(model, promptset, "", "mean_toxicity", base / 3 + shift / 2, 0.015)
            add(model, promptset, "", "expected_max_toxicity_std", 0.2)
            add(model, promptset, "", "distinct_2", 0.8 - sparsity / 2)
        for j, group in enumerate(GROUPS):
            add(
                model,
                "bold",
                group,
                "sentiment_mean",
                0.08 * j - 0.3 + rng.normal(0, 0.05) + shift,
                0.08,
            )
            add(model, "bold", group, "mean_toxicity", 0.03 + 0.01 * j + abs(shift) / 3, 0.01)
        for domain in sorted(set(GROUPS.values())):
            add(model, "bold", domain, "sentiment_gap", 0.2 + rng.normal(0, 0.05) + shift, 0.07)
            add(model, "bold", domain, "toxicity_gap", 0.03 + abs(rng.normal(0, 0.01)), 0.02)
            add(model, "bold", domain, "sentiment_group_sd", 0.1)
        add(model, "crows_pairs", "", "crows_pairs_stereo_share", 58 - 50 * shift, 2.0)
        add(model, "crows_pairs", "gender", "crows_pairs_stereo_share", 60.0, 4.0)
        add(model, "stereoset", "", "stereoset_ss", 61.0 - 10 * shift, 1.5)
        add(model, "stereoset", "", "stereoset_lms", 88.0, 1.0)
    frame = pd.DataFrame(rows, columns=V2_COLUMNS)
    # the teacher is its own reference: no diff rows, and one model without CIs
    frame.loc[frame["model"] == "distilgpt2", ["ci_low", "ci_high"]] = np.nan
    return frame


def calibration() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ["profanity_check", "prompt", 40, 13, 0.71, 0.38],
            ["profanity_check", "continuation", 160, 0, np.nan, 0.12],
            ["detoxify", "prompt", 40, 13, 0.88, 0.61],
            ["detoxify", "continuation", 160, 0, np.nan, np.nan],
        ],
        columns=["scorer", "text", "n", "n_toxic", "roc_auc", "spearman"],
    )


def _is_png(path: Path, min_bytes: int = 10_000) -> bool:
    return path.is_file() and path.stat().st_size > min_bytes and path.read_bytes()[:8] == PNG_MAGIC


DRAWERS = {
    "metrics_vs_sparsity": lambda m, p: plot_metrics_vs_sparsity(m, p, "rtp"),
    "distillation": lambda m, p: plot_distillation_panel(m, p, "rtp"),
    "tradeoff": lambda m, p: plot_tradeoff(m, p, "rtp"),
    "bold_heatmap": lambda m, p: plot_bold_heatmap(m, p, GROUPS),
    "sentiment_by_group": lambda m, p: plot_sentiment_by_group(m, p, group_domains=GROUPS),
}


@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_each_plot_writes_a_png(tmp_path: Path, name: str) -> None:
    DRAWERS[name](v2_metrics(), tmp_path / f"{name}.png")
    assert _is_png(tmp_path / f"{name}.png")
    # atomic writes leave no temporary files behind
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.png"]


def test_scorer_calibration_png(tmp_path: Path) -> None:
    plot_scorer_calibration(calibration(), tmp_path / "cal.png")
    assert _is_png(tmp_path / "cal.png")
    plot_scorer_calibration(calibration().iloc[:0], tmp_path / "empty.png")
    plot_scorer_calibration(calibration().drop(columns="spearman"), tmp_path / "bad.png")
    assert _is_png(tmp_path / "empty.png", 3000) and _is_png(tmp_path / "bad.png", 3000)


def test_model_styles_order_flags_and_colours() -> None:
    styles = model_styles(v2_metrics())
    assert list(styles) == [
        "teacher",
        "student",
        "distilgpt2",
        "pruned-0.10",
        "pruned-0.20",
        "pruned-0.30",
        "pruned-0.40",
        "pruned-0.50",
    ]
    assert [m for m, s in styles.items() if s.flagged] == ["pruned-0.50"]
    assert styles["student"].colour != styles["distilgpt2"].colour
    assert styles["student"].marker != styles["distilgpt2"].marker
    assert styles["pruned-0.30"].level == pytest.approx(0.30)
    assert styles["pruned-0.50"].label("pruned-0.50") == "pruned-0.50 (degenerate)"


def test_model_styles_read_blank_columns_from_the_name() -> None:
    frame = pd.DataFrame(
        {
            "model": ["pruned-0.30", "student", "gpt2"],
            "compression": ["", None, "none"],
            "level": ["", "", ""],
            "promptset": "",
            "group": "",
            "metric": "perplexity",
            "value": 1.0,
            "flagged": ["False", "True", ""],
        }
    )
    styles = model_styles(frame)
    assert styles["pruned-0.30"].compression == "pruning"
    assert styles["pruned-0.30"].level == pytest.approx(0.30)
    assert styles["student"].compression == "distillation" and styles["student"].flagged
    assert not styles["gpt2"].flagged


def test_nonzero_parameters_uses_the_prunable_count() -> None:
    counts, exact = nonzero_parameters(v2_metrics())
    assert exact
    assert counts["pruned-0.50"] == pytest.approx(135e6 - 0.5 * 85e6)
    assert counts["teacher"] == pytest.approx(135e6)
    frame = v2_metrics()
    counts, exact = nonzero_parameters(frame[frame["metric"] != "n_prunable"])
    assert not exact
    assert counts["pruned-0.50"] == pytest.approx(135e6 * 0.5)


def _v1_like(frame: pd.DataFrame) -> pd.DataFrame:
    """The same table without the version-2 columns and metrics."""
    keep = {
        "perplexity",
        "n_parameters",
        "sparsity",
        "expected_max_toxicity",
        "toxicity_probability",
        "sentiment_mean",
        "sentiment_gap",
    }
    return frame.loc[frame["metric"].isin(keep), V2_COLUMNS[:7]]


@pytest.mark.parametrize(
    "variant",
    ["no_ci_no_flags", "only_teacher", "only_pruned", "no_toxicity", "empty"],
)
def test_plots_survive_missing_metrics(tmp_path: Path, variant: str) -> None:
    frame = v2_metrics()
    frame = {
        "no_ci_no_flags": _v1_like(frame),
        "only_teacher": frame[frame["model"] == "teacher"],
        "only_pruned": frame[frame["model"] == "pruned-0.30"],
        "no_toxicity": frame[~frame["metric"].str.contains("toxicity|perplexity")],
        "empty": frame.iloc[:0],
    }[variant]
    for name, draw in DRAWERS.items():
        draw(frame, tmp_path / f"{name}.png")
        assert _is_png(tmp_path / f"{name}.png", 3000), name
    plot_metrics_vs_sparsity(frame, tmp_path / "other.png", promptset="missing")


def test_plot_all_from_csv(tmp_path: Path) -> None:
    csv = tmp_path / "metrics.csv"
    write_csv(csv, v2_metrics())
    cal = tmp_path / "scorer_calibration.csv"
    write_csv(cal, calibration())
    prompts = tmp_path / "bold.jsonl"
    write_jsonl(
        prompts,
        [
            {"prompt_id": str(i), "text": "x", "domain": d, "group": g}
            for i, (g, d) in enumerate(GROUPS.items())
        ]
        + [{"prompt_id": "n", "text": "x", "domain": None, "group": None}],
    )
    assert group_domains_from_prompts(prompts) == GROUPS
    paths = plot_all(csv, tmp_path / "figures", bias_prompts=prompts, calibration_csv=cal)
    assert [p.stem for p in paths] == list(FIGURES)
    assert all(_is_png(p) for p in paths)
