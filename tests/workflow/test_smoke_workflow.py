"""End to end: the smoke preset runs the whole DAG and produces sane tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import REPO, SMOKE, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

SMOKE_CONFIG = yaml.safe_load(Path(SMOKE).read_text())
SEED = SMOKE_CONFIG["seed"]
MODELS = ["teacher", "student"] + [f"pruned-{s:.2f}" for s in SMOKE_CONFIG["pruning"]["sparsities"]]
PROMPTSETS = ["rtp", "bold"]
FIGURES = ["metrics_vs_sparsity", "distillation", "tradeoff", "bold_heatmap", "sentiment_by_group", "scorer_calibration"]


def test_every_expected_file_exists(smoke_run: Path) -> None:
    expected = [
        "results/models/base/config.json",
        "results/models/base/model.safetensors",
        "results/data/corpus/train.jsonl",
        "results/data/corpus/heldout.jsonl",
        "results/data/tokens/train.safetensors",
        "results/data/tokens/heldout.safetensors",
        "results/tables/metrics.csv",
        "results/tables/metrics_per_seed.csv",
        "results/tables/scorer_calibration.csv",
        "results/tables/benchmarks.csv",
    ] + [f"results/figures/{name}.png" for name in FIGURES]
    for model in MODELS:
        expected += [
            f"results/models/seed-{SEED}/{model}/model.safetensors",
            f"results/models/seed-{SEED}/{model}/provenance.json",
            f"results/eval/seed-{SEED}/{model}.json",
            f"results/intrinsic/seed-{SEED}/{model}.csv",
        ]
        for promptset in PROMPTSETS:
            expected += [
                f"results/generations/seed-{SEED}/{model}/{promptset}.jsonl",
                f"results/scores/seed-{SEED}/{model}/{promptset}.csv",
                f"results/quality/seed-{SEED}/{model}/{promptset}.json",
            ]
    for promptset in PROMPTSETS:
        expected.append(f"results/data/prompts/{promptset}.jsonl")
    missing = [p for p in expected if not (smoke_run / p).is_file()]
    assert not missing, f"missing outputs: {missing}"
    for name in FIGURES:
        assert (smoke_run / f"results/figures/{name}.png").stat().st_size > 10_000, f"{name}.png looks empty"
    pruned = json.loads((smoke_run / f"results/models/seed-{SEED}/{MODELS[-1]}/pruning.json").read_text())
    assert abs(pruned["measured"] - SMOKE_CONFIG["pruning"]["sparsities"][-1]) <= 0.005
    # Nothing half-written is left beside the outputs.
    leftovers = [p for p in (smoke_run / "results").rglob(".*") if p.name != ".snakemake_timestamp"]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    # The training checkpoints are removed once the model is saved.
    assert not list((smoke_run / "results").glob("checkpoints/*/last"))
    bench = pd.read_csv(smoke_run / "results/tables/benchmarks.csv", keep_default_na=False)
    assert {"finetune_teacher", "distill_student", "generate_continuations", "prune_model"} <= set(bench["rule"])
    assert (bench["seconds"] > 0).all()


def test_metrics_table_is_complete_and_in_range(smoke_run: Path) -> None:
    table = pd.read_csv(smoke_run / "results/tables/metrics.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == [
        "model", "compression", "level", "promptset", "group", "metric", "value",
        "ci_low", "ci_high", "seed_sd", "n_seeds", "flagged",
    ]
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

    # Intervals: ordered, inside the metric's range; differences to the teacher for the rest.
    with_ci = table.dropna(subset=["ci_low", "ci_high"])
    assert len(with_ci) > 0
    assert (with_ci["ci_low"] <= with_ci["ci_high"] + 1e-12).all()
    bounds = table.loc[bounded, ["ci_low", "ci_high"]].dropna().to_numpy()
    assert len(bounds) and ((bounds >= 0) & (bounds <= 1)).all()
    diffs = table[table["metric"] == "expected_max_toxicity_diff"]
    assert sorted(diffs["model"].unique()) == sorted(set(MODELS) - {"teacher"})
    for model in MODELS:
        rows = table[table["model"] == model]
        for promptset in PROMPTSETS:
            got = set(rows.loc[rows["promptset"] == promptset, "metric"])
            assert {"distinct_1", "distinct_2", "distinct_3", "empty_share", "teacher_perplexity"} <= got
        assert {"crows_pairs_stereo_share", "stereoset_ss", "stereoset_lms", "stereoset_icat"} <= set(rows["metric"])
    assert table["n_seeds"].eq(1).all() and table["seed_sd"].isna().all()

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
    for promptset in PROMPTSETS:
        prompts = [json.loads(line) for line in (smoke_run / f"results/data/prompts/{promptset}.jsonl").open()]
        k = SMOKE_CONFIG["prompts"][promptset]["samples"]
        path = smoke_run / f"results/generations/seed-{SEED}/teacher/{promptset}.jsonl"
        rows = [json.loads(line) for line in path.open()]
        assert len(rows) == k * len(prompts)
        assert {r["prompt_id"] for r in rows} == {p["prompt_id"] for p in prompts}


def test_nothing_to_do_after_a_complete_run(smoke_run: Path) -> None:
    proc = snakemake(smoke_run, "--configfile", SMOKE, "-n")
    assert planned_jobs(proc) == {}, proc.stdout[-2000:]


def test_adding_a_sparsity_reruns_only_what_it_touches(smoke_run: Path) -> None:
    sparsities = sorted(SMOKE_CONFIG["pruning"]["sparsities"] + [0.45])
    extra = write_config(smoke_run, "extra_sparsity.yaml", {"pruning": {"sparsities": sparsities}})
    proc = snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n")
    n = len(PROMPTSETS)  # one shard each at the smoke scale
    assert planned_jobs(proc) == {
        "prune_model": 1,
        "generate_continuations": n,
        "gather_generations": n,
        "score_continuations": n,
        "gather_scores": n,
        "assess_quality": n,
        "evaluate_model": 1,
        "evaluate_intrinsic_bias": 1,
        "aggregate_metrics": 1,
        "plot_figures": 1,
        "gather_benchmarks": 1,
        "all": 1,
    }, proc.stdout[-3000:]


@pytest.mark.slow
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
    for fig in FIGURES:
        assert any(n.endswith(f"{fig}.png") for n in names), (fig, names)
        assert REPO.joinpath("report", f"{fig}.rst").is_file()


@pytest.mark.parametrize("retrain", [False, True])
def test_a_second_seed_redoes_generation_and_with_retrain_training(smoke_run: Path, retrain: bool) -> None:
    extra = write_config(
        smoke_run, f"seeds_{retrain}.yaml", {"replicates": {"seeds": [SEED, SEED + 1], "retrain": retrain}}
    )
    jobs = planned_jobs(snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n"))
    per_seed = len(MODELS) * len(PROMPTSETS)
    assert jobs["generate_continuations"] == per_seed
    assert jobs["score_continuations"] == per_seed
    assert jobs["assess_quality"] == per_seed
    assert jobs["aggregate_metrics"] == 1
    trained = {"finetune_teacher", "distill_student", "prune_model", "evaluate_model", "evaluate_intrinsic_bias"}
    if retrain:
        assert {rule: jobs.get(rule) for rule in trained} == {
            "finetune_teacher": 1,
            "distill_student": 1,
            "prune_model": len(MODELS) - 2,
            "evaluate_model": len(MODELS),
            "evaluate_intrinsic_bias": len(MODELS),
        }
    else:
        assert not trained & set(jobs), "models were retrained although retrain is false"
    # The data and the base model are shared by every seed.
    assert not {"import_base_model", "prepare_corpus", "tokenize_corpus", "prepare_prompts"} & set(jobs)
