"""Tests for compfair.plots: every figure is drawn from a small metrics table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from compfair.aggregate import COLUMNS, model_compression
from compfair.io import write_csv, write_jsonl
from compfair.plots import (
    group_domains_from_prompts,
    plot_all,
    plot_perplexity_vs_toxicity,
    plot_sentiment_by_group,
    plot_toxicity_vs_sparsity,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = {
    "teacher": 0.0,
    "student": 0.05,
    "pruned-0.30": 0.01,
    "pruned-0.50": 0.03,
    "pruned-0.70": 0.08,
    "pruned-0.90": 0.2,
}
GROUPS = {
    "men": "gender",
    "women": "gender",
    "asian_americans": "race",
    "african_americans": "race",
    "european_americans": "race",
}


def _metrics() -> pd.DataFrame:
    rows = []

    def add(model, promptset, group, metric, value):
        compression, level = model_compression(model)
        rows.append([model, compression, level, promptset, group, metric, value])

    for i, (model, shift) in enumerate(MODELS.items()):
        add(model, "", "", "perplexity", 20 * (1 + 10 * shift) ** 2)
        add(model, "", "", "n_parameters", 1e6)
        add(model, "", "", "sparsity", model_compression(model)[1] or 0.0)
        add(model, "rtp", "", "expected_max_toxicity", 0.45 + shift)
        add(model, "rtp", "", "toxicity_probability", 0.40 + shift)
        add(model, "rtp", "", "mean_toxicity", 0.2 + shift)
        for j, group in enumerate(GROUPS):
            add(model, "bold", group, "sentiment_mean", 0.1 * j - 0.15 + 0.02 * i)
        add(model, "bold", "gender", "sentiment_gap", 0.1)
    return pd.DataFrame(rows, columns=COLUMNS)


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 5000 and path.read_bytes()[:8] == PNG_MAGIC


def test_each_plot_writes_a_png(tmp_path: Path) -> None:
    metrics = _metrics()
    plot_toxicity_vs_sparsity(metrics, tmp_path / "a.png")
    plot_sentiment_by_group(metrics, tmp_path / "b.png", group_domains=GROUPS)
    plot_sentiment_by_group(metrics, tmp_path / "b1.png")  # no domains: one panel
    plot_perplexity_vs_toxicity(metrics, tmp_path / "c.png")
    for name in ("a.png", "b.png", "b1.png", "c.png"):
        assert _is_png(tmp_path / name), name
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "b1.png", "c.png"]


def test_plot_all_from_csv(tmp_path: Path) -> None:
    csv = tmp_path / "metrics.csv"
    write_csv(csv, _metrics())
    prompts = tmp_path / "bold.jsonl"
    write_jsonl(
        prompts,
        [
            {"prompt_id": str(i), "text": "x", "domain": d, "group": g}
            for i, (g, d) in enumerate(GROUPS.items())
        ],
    )
    assert group_domains_from_prompts(prompts) == GROUPS
    paths = plot_all(csv, tmp_path / "figures", bias_prompts=prompts)
    assert [p.name for p in paths] == [
        "toxicity_vs_sparsity.png",
        "sentiment_by_group.png",
        "perplexity_vs_toxicity.png",
    ]
    assert all(_is_png(p) for p in paths)


@pytest.mark.parametrize("keep", ["teacher", "pruned-0.30"])
def test_plots_survive_partial_tables(tmp_path: Path, keep: str) -> None:
    metrics = _metrics()
    metrics = metrics[metrics["model"] == keep]
    plot_toxicity_vs_sparsity(metrics, tmp_path / "a.png")
    plot_perplexity_vs_toxicity(metrics, tmp_path / "c.png", promptset="missing")
    plot_sentiment_by_group(metrics[metrics["metric"] != "sentiment_mean"], tmp_path / "b.png")
    assert all(
        _is_png(tmp_path / n) or (tmp_path / n).stat().st_size > 1000
        for n in ("a.png", "b.png", "c.png")
    )
