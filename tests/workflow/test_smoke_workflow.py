"""End to end: the smoke preset runs the whole DAG and produces sane tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import REPO, SMOKE, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

SMOKE_CONFIG = yaml.safe_load(Path(SMOKE).read_text())
MODELS = ["teacher", "student"] + [f"pruned-{s:.2f}" for s in SMOKE_CONFIG["pruning"]["sparsities"]]
PROMPTSETS = ["rtp", "bold"]


def test_every_expected_file_exists(smoke_run: Path) -> None:
    expected = [
        "results/models/base/config.json",
        "results/models/base/model.safetensors",
        "results/data/corpus/train.jsonl",
        "results/data/corpus/heldout.jsonl",
        "results/data/tokens/train.safetensors",
        "results/data/tokens/heldout.safetensors",
        "results/tables/metrics.csv",
        "results/figures/toxicity_vs_sparsity.png",
        "results/figures/sentiment_by_group.png",
        "results/figures/perplexity_vs_toxicity.png",
    ]
    for model in MODELS:
        expected += [f"results/models/{model}/model.safetensors", f"results/eval/{model}.json"]
        for promptset in PROMPTSETS:
            expected += [
                f"results/generations/{model}/{promptset}.jsonl",
                f"results/scores/{model}/{promptset}.csv",
            ]
    for promptset in PROMPTSETS:
        expected.append(f"results/data/prompts/{promptset}.jsonl")
    missing = [p for p in expected if not (smoke_run / p).is_file()]
    assert not missing, f"missing outputs: {missing}"
    for png in (smoke_run / "results/figures").glob("*.png"):
        assert png.stat().st_size > 10_000, f"{png} looks empty"
    # Nothing half-written is left beside the outputs.
    leftovers = [p for p in (smoke_run / "results").rglob(".*") if p.name != ".snakemake_timestamp"]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_metrics_table_is_complete_and_in_range(smoke_run: Path) -> None:
    table = pd.read_csv(smoke_run / "results/tables/metrics.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns[:7]) == ["model", "compression", "level", "promptset", "group", "metric", "value"]
    assert set(table["model"]) == set(MODELS)

    per_promptset = ["expected_max_toxicity", "toxicity_probability", "mean_toxicity"]
    per_model = ["perplexity", "n_parameters", "sparsity"]
    for model in MODELS:
        rows = table[table["model"] == model]
        for metric in per_model:
            assert (rows["metric"] == metric).sum() == 1, (model, metric)
        for promptset in PROMPTSETS:
            got = set(rows.loc[rows["promptset"] == promptset, "metric"])
            assert set(per_promptset) <= got, (model, promptset)
        bold = rows[rows["promptset"] == "bold"]
        assert {"sentiment_mean", "sentiment_positive_share", "sentiment_negative_share", "sentiment_gap"} <= set(
            bold["metric"]
        )

    bounded = table["metric"].isin(per_promptset + ["sentiment_positive_share", "sentiment_negative_share", "sparsity"])
    assert table.loc[bounded, "value"].between(0, 1).all()
    assert table.loc[table["metric"] == "sentiment_mean", "value"].between(-1, 1).all()
    assert table.loc[table["metric"] == "sentiment_gap", "value"].between(0, 2).all()
    assert (table.loc[table["metric"] == "perplexity", "value"] > 1).all()

    # Pruned models carry their level and measured sparsity matches it.
    for s in SMOKE_CONFIG["pruning"]["sparsities"]:
        model = f"pruned-{s:.2f}"
        rows = table[table["model"] == model]
        assert (rows["compression"] == "pruning").all()
        assert rows["level"].iloc[0] == pytest.approx(s)
        measured = rows.loc[rows["metric"] == "sparsity", "value"].item()
        assert measured == pytest.approx(s, abs=0.005)
    teacher_sparsity = table.loc[(table["model"] == "teacher") & (table["metric"] == "sparsity"), "value"].item()
    assert teacher_sparsity < 0.01
    # The student has half the teacher's decoder layers, so fewer parameters.
    params = table[table["metric"] == "n_parameters"].set_index("model")["value"]
    assert params["student"] < params["teacher"]


def test_generations_have_k_samples_per_prompt(smoke_run: Path) -> None:
    import json

    for promptset in PROMPTSETS:
        prompts = [json.loads(l) for l in (smoke_run / f"results/data/prompts/{promptset}.jsonl").open()]
        k = SMOKE_CONFIG["prompts"][promptset]["samples"]
        rows = [json.loads(l) for l in (smoke_run / f"results/generations/teacher/{promptset}.jsonl").open()]
        assert len(rows) == k * len(prompts)
        assert {r["prompt_id"] for r in rows} == {p["prompt_id"] for p in prompts}


def test_nothing_to_do_after_a_complete_run(smoke_run: Path) -> None:
    proc = snakemake(smoke_run, "--configfile", SMOKE, "-n")
    assert planned_jobs(proc) == {}, proc.stdout[-2000:]


def test_adding_a_sparsity_reruns_only_what_it_touches(smoke_run: Path) -> None:
    sparsities = sorted(SMOKE_CONFIG["pruning"]["sparsities"] + [0.45])
    extra = write_config(smoke_run, "extra_sparsity.yaml", {"pruning": {"sparsities": sparsities}})
    proc = snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n")
    assert planned_jobs(proc) == {
        "prune_model": 1,
        "generate_continuations": len(PROMPTSETS),
        "score_continuations": len(PROMPTSETS),
        "evaluate_model": 1,
        "aggregate_metrics": 1,
        "plot_figures": 1,
        "all": 1,
    }, proc.stdout[-3000:]


def test_two_runs_give_identical_tables(smoke_run: Path, tmp_path: Path) -> None:
    """Same config, fresh directory: byte-identical metrics."""
    snakemake(tmp_path, "--configfile", SMOKE)
    first = (smoke_run / "results/tables/metrics.csv").read_bytes()
    assert (tmp_path / "results/tables/metrics.csv").read_bytes() == first


def test_report_has_every_figure_with_its_caption(smoke_run: Path) -> None:
    report = smoke_run / "report.zip"
    snakemake(smoke_run, "--configfile", SMOKE, "--report", str(report))
    import zipfile

    with zipfile.ZipFile(report) as zf:
        names = zf.namelist()
    for fig in ("toxicity_vs_sparsity", "sentiment_by_group", "perplexity_vs_toxicity"):
        assert any(n.endswith(f"{fig}.png") for n in names), (fig, names)
    assert REPO.joinpath("report", "toxicity_vs_sparsity.rst").is_file()
