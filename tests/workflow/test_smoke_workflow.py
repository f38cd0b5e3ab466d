"""End to end: the smoke preset runs the whole DAG and produces sane tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from compfair.config import drop_removed
from compfair.variants import build_variants
from tests.support import layered

from .conftest import (
    REPO,
    SMOKE,
    SMOKE_LAYOUT,
    SMOKE_RESULTS,
    planned_jobs,
    snakemake,
    write_config,
)

pytestmark = pytest.mark.workflow

R = SMOKE_RESULTS
LAYOUT = SMOKE_LAYOUT
SMOKE_CONFIG = yaml.safe_load(Path(SMOKE).read_text())
DEFAULT_CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
SEED = SMOKE_CONFIG["seed"]


def _layered(base: dict, preset: dict) -> dict:
    """A preset over config.yaml as Snakemake layers them, nulls removed."""
    config = layered(base, preset)
    drop_removed(config)
    return config


VARIANTS = build_variants(_layered(DEFAULT_CONFIG, SMOKE_CONFIG))
MODELS = list(VARIANTS)
PROMPTSETS = ["bold", "rtp"]
TOXICITY = ["expected_max_toxicity", "toxicity_probability", "mean_toxicity"]
SENTIMENT = ["sentiment_mean", "sentiment_positive_share", "sentiment_negative_share"]


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).fillna(
        {"promptset": "", "group": ""}
    )


def model_dir(model: str) -> str:
    family = VARIANTS[model].family
    return "base" if family == "base" else f"seed-{SEED}/{model}"


def test_the_smoke_study_has_every_family() -> None:
    assert MODELS == [
        "base",
        "teacher",
        "kd-0.50",
        "magnitude-0.50",
        "random-0.50",
        "noise-match-magnitude-0.50",
        "random-match-magnitude-0.50",
    ]


def _check_controls(workdir: Path, controls: list[str]) -> None:
    """Each control's perplexity ratio is within the tolerance of its model's, and
    matched_controls.csv has a row for every metric with per-prompt or per-item values
    (every row the model has in comparisons.csv) for every (model, control)."""
    models = read(workdir / R / "tables/models.csv").set_index("model")
    comp = read(workdir / R / "tables/comparisons.csv")
    matched = read(workdir / R / "tables/matched_controls.csv")
    keys = ["promptset", "group", "metric"]
    for control in controls:
        model = models.loc[control, "matches"]
        ratio, theirs = (
            models.loc[model, "perplexity_ratio"],
            models.loc[control, "perplexity_ratio"],
        )
        assert abs(theirs / ratio - 1) <= 0.05, (control, ratio, theirs)
        rows = matched[(matched["model"] == model) & (matched["control"] == control)]
        assert rows["perplexity_ratio"].iloc[0] == pytest.approx(ratio)
        assert rows["control_perplexity_ratio"].iloc[0] == pytest.approx(theirs)
        expected = comp.loc[comp["model"] == model, keys].itertuples(index=False)
        assert set(rows[keys].itertuples(index=False)) == set(expected), control
        assert {*TOXICITY, "crows_pairs_stereo_share", "stereoset_ss"} <= set(rows["metric"])
        assert set(rows["draws"]) == {1}
        for promptset in PROMPTSETS:  # what was not matched, beside what was, from quality/
            quality = json.loads((workdir / R / f"quality/seed-{SEED}/{control}.json").read_text())
            shown = models.loc[control, f"{promptset}_distinct_2"]
            assert shown == pytest.approx(quality["promptsets"][promptset]["distinct_2"])
            assert models.loc[[model, control], f"{promptset}_teacher_perplexity"].gt(0).all()
            assert models.loc[[model, control], f"{promptset}_empty_share"].between(0, 1).all()


def test_matched_controls_reach_their_models_quality(smoke_run: Path) -> None:
    _check_controls(smoke_run, VARIANTS.names("control"))


def test_a_second_draw_is_pooled_with_the_first(smoke_copy: Path) -> None:
    """controls.draws 2 on a finished study: only the second draws' jobs run, and
    matched_controls.csv gets a row per (model, kind) over both draws, its diff their mean."""
    extra = write_config(smoke_copy, "draws.yaml", {"controls": {"draws": 2}})
    proc = snakemake(smoke_copy, "--configfile", SMOKE, str(extra), "-n")
    assert planned_jobs(proc) == SECOND_DRAWS, proc.stdout[-3000:]
    snakemake(smoke_copy, "--configfile", SMOKE, str(extra))
    matched = read(smoke_copy / R / "tables/matched_controls.csv")
    keys = ["promptset", "group", "metric"]
    for kind in ("noise", "random"):
        draws = [f"{kind}-match-magnitude-0.50", f"{kind}-match-magnitude-0.50-draw2"]
        pooled = matched[matched["control"] == f"{kind}-match-magnitude-0.50 (2 draws)"]
        assert len(pooled) > 0 and set(pooled["draws"]) == {2}
        singles = matched[matched["control"].isin(draws)].groupby(keys)["diff"].mean()
        joined = pooled.set_index(keys)["diff"]
        assert joined.to_numpy() == pytest.approx(singles.loc[joined.index].to_numpy())


def test_every_expected_file_exists(smoke_run: Path) -> None:
    expected = [
        "models/base/config.json",
        "data/corpus/train.jsonl",
        "data/tokens/heldout.safetensors",
        "tables/metrics.csv",
        "tables/metrics_per_seed.csv",
        "tables/comparisons.csv",
        "tables/models.csv",
        "tables/scorer_calibration.csv",
        "tables/job_timings.csv",
    ]
    for model in MODELS:
        expected += [
            f"models/{model_dir(model)}/model.safetensors",
            f"models/{model_dir(model)}/provenance.json",
            f"eval/{model_dir(model)}.json",
            f"intrinsic/{model_dir(model)}.csv",
            f"quality/seed-{SEED}/{model}.json",
        ]
        for promptset in PROMPTSETS:
            expected += [  # one shard a prompt set: no gathered copy
                f"generations/seed-{SEED}/{model}/{promptset}/shard-0.jsonl",
                f"scores/seed-{SEED}/{model}/{promptset}/shard-0.csv",
            ]
    expected += [f"data/prompts/{promptset}.jsonl" for promptset in PROMPTSETS]
    missing = [p for p in expected if not (smoke_run / R / p).is_file()]
    assert not missing, f"missing outputs: {missing}"
    assert not (
        smoke_run / "results" / "default"
    ).exists()  # a preset never writes the default's folder
    for model in ("magnitude-0.50", "random-0.50"):
        report = json.loads(
            (smoke_run / R / f"models/{model_dir(model)}/compression.json").read_text()
        )
        assert (
            abs(report["measured_after_reload"] - 0.5) <= 0.005
            and report["method"] == VARIANTS[model].method
        )
    leftovers = [p for p in (smoke_run / "results").rglob(".*") if p.name != ".snakemake_timestamp"]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert not list((smoke_run / R).glob("checkpoints/*/last"))
    bench = pd.read_csv(smoke_run / R / "tables/job_timings.csv", keep_default_na=False)
    assert {
        "finetune_teacher",
        "distill_student",
        "generate_continuations",
        "compress_model",
    } <= set(bench["rule"])
    assert (bench["seconds"] > 0).all()


def test_metrics_table_is_complete_and_in_range(smoke_run: Path) -> None:
    table = read(smoke_run / R / "tables/metrics.csv")
    assert set(table["model"]) == set(MODELS)
    for model in MODELS:
        rows = table[table["model"] == model]
        assert (rows["parent"].fillna("") == (VARIANTS[model].parent or "")).all()
        for metric in ("perplexity", "n_parameters", "sparsity"):
            assert (rows["metric"] == metric).sum() == 1, (model, metric)
        for promptset in PROMPTSETS:
            got = set(rows.loc[rows["promptset"] == promptset, "metric"])
            assert {*TOXICITY, *(f"{m}_nonempty" for m in TOXICITY)} <= got, (model, promptset)
            assert {
                "distinct_1",
                "distinct_2",
                "distinct_3",
                "empty_share",
                "teacher_perplexity",
            } <= got
        assert {*SENTIMENT, "sentiment_gap", "mean_toxicity_masked"} <= set(
            rows.loc[rows["promptset"] == "bold", "metric"]
        )
        assert {
            "crows_pairs_stereo_share",
            "stereoset_ss",
            "stereoset_lms",
            "stereoset_icat",
        } <= set(rows["metric"])
    bounded = table["metric"].isin(
        [*TOXICITY, "sentiment_positive_share", "sentiment_negative_share", "sparsity"]
    )
    assert table.loc[bounded, "value"].between(0, 1).all()
    assert table.loc[table["metric"] == "sentiment_mean", "value"].between(-1, 1).all()
    assert (table.loc[table["metric"] == "perplexity", "value"] > 1).all()
    with_ci = table.dropna(subset=["ci_low", "ci_high"])
    assert len(with_ci) and (with_ci["ci_low"] <= with_ci["ci_high"] + 1e-12).all()
    diffs = table[table["metric"] == "expected_max_toxicity_diff"]
    assert sorted(diffs["model"].unique()) == sorted(
        set(MODELS) - {"base"}
    )  # every model with a parent
    for model in ("magnitude-0.50", "random-0.50"):
        measured = table.loc[
            (table["model"] == model) & (table["metric"] == "sparsity"), "value"
        ].item()
        assert measured == pytest.approx(0.5, abs=0.005)
    params = table[table["metric"] == "n_parameters"].set_index("model")["value"]
    assert params["kd-0.50"] < params["teacher"]  # half the decoder layers


def test_every_model_is_compared_with_its_parent(smoke_run: Path) -> None:
    comp = read(smoke_run / R / "tables/comparisons.csv")
    prompts = {
        ps: [json.loads(line) for line in (smoke_run / R / f"data/prompts/{ps}.jsonl").open()]
        for ps in PROMPTSETS
    }
    groups = sorted({p["group"] for p in prompts["bold"]})
    for model in MODELS[1:]:
        mine = comp[comp["model"] == model]
        assert set(mine["parent"]) == {VARIANTS[model].parent}, model
        for promptset in PROMPTSETS:
            for metric in TOXICITY:
                row = mine[
                    (mine["promptset"] == promptset)
                    & (mine["group"] == "")
                    & (mine["metric"] == metric)
                ]
                assert len(row) == 1, (model, promptset, metric)
                assert row["n_units"].item() == len(prompts[promptset])
        for group in groups:
            for metric in SENTIMENT:
                assert ((mine["group"] == group) & (mine["metric"] == metric)).sum() == 1, (
                    model,
                    group,
                    metric,
                )
    assert "base" not in set(comp["model"])
    assert ((comp["diff"] - (comp["value"] - comp["parent_value"])).abs() < 1e-9).all()


def test_no_p_value_is_zero_and_empty_intervals_say_why(smoke_run: Path) -> None:
    """Randomization p-values are never 0; a row has a non-degenerate interval over at least
    bootstrap.min_units (10) prompts or items, or none and a ci_note saying why."""
    comp = pd.read_csv(
        smoke_run / R / "tables/comparisons.csv", keep_default_na=False, na_values=[""]
    )
    assert (comp["p_value"].dropna() > 0).all()
    with_ci = comp.dropna(subset=["ci_low", "ci_high"])
    assert len(with_ci) and (with_ci["n_units"] >= 10).all()
    width = with_ci["ci_high"] - with_ci["ci_low"]
    assert not ((width.abs() < 1e-12) & (with_ci["diff"].abs() > 1e-12)).any()
    empty = comp[comp["ci_low"].isna()]
    assert len(empty) and (empty["ci_note"].fillna("").str.len() > 0).all()
    small = comp[comp["n_units"] < 10]
    assert len(small) and small["p_value"].isna().all()
    assert small["ci_note"].str.startswith("fewer than 10 units").all()


def test_flags_follow_the_perplexity_ratio_to_the_parent(smoke_copy: Path) -> None:
    models = read(smoke_copy / R / "tables/models.csv").set_index("model")
    ratios = models["perplexity_ratio"].dropna()
    # between the ratios of the models, so that some are above it and some not
    threshold = float(ratios.sort_values().iloc[len(ratios) // 2])
    extra = write_config(
        smoke_copy, "ratio.yaml", {"quality_thresholds": {"max_perplexity_ratio": threshold}}
    )
    jobs = planned_jobs(snakemake(smoke_copy, "--configfile", SMOKE, str(extra), "-n"))
    assert set(jobs) == {"aggregate_metrics", "plot_figures", "gather_job_timings", "all"}, jobs
    snakemake(smoke_copy, "--configfile", SMOKE, str(extra))
    models = read(smoke_copy / R / "tables/models.csv").set_index("model")
    above = set(ratios[ratios > threshold].index)
    assert above and set(models.index[models["flagged"]]) == above
    for model in above:
        assert (
            "perplexity" in models.loc[model, "flag_reasons"]
            and "parent" in models.loc[model, "flag_reasons"]
        )
    table = read(smoke_copy / R / "tables/metrics.csv")
    assert set(table.loc[table["flagged"], "model"]) == above


def test_generations_have_k_samples_per_prompt(smoke_run: Path) -> None:
    for promptset in PROMPTSETS:
        prompts = [
            json.loads(line) for line in (smoke_run / R / f"data/prompts/{promptset}.jsonl").open()
        ]
        k = SMOKE_CONFIG["prompts"][promptset]["samples"]
        for model in MODELS:
            path = smoke_run / LAYOUT.generations(1, seed=SEED, model=model, promptset=promptset)
            rows = [json.loads(line) for line in path.open()]
            assert len(rows) == k * len(prompts)
            assert {r["prompt_id"] for r in rows} == {p["prompt_id"] for p in prompts}


def test_nothing_to_do_after_a_complete_run(smoke_run: Path) -> None:
    proc = snakemake(smoke_run, "--configfile", SMOKE, "-n")
    assert planned_jobs(proc) == {}, proc.stdout[-2000:]


#: What one new compressed model schedules in a finished smoke study: its own jobs (one
#: shard a prompt set at the smoke scale, so no gather jobs), then the tables.
ONE_NEW_MODEL = {
    "compress_model": 1,
    **{rule: len(PROMPTSETS) for rule in ("generate_continuations", "score_continuations")},
    "assess_quality": 1,
    "evaluate_model": 1,
    "aggregate_metrics": 1,
    "plot_figures": 1,
    "gather_job_timings": 1,
    "all": 1,
}

#: What a second draw of the smoke study's two controls plans.
SECOND_DRAWS = {
    **{rule: 2 * n for rule, n in ONE_NEW_MODEL.items() if rule != "compress_model"},
    "match_control": 2,
    **{rule: 1 for rule in ("aggregate_metrics", "plot_figures", "gather_job_timings", "all")},
}


def test_adding_a_level_reruns_only_what_it_touches(smoke_run: Path) -> None:
    extra = write_config(
        smoke_run, "extra_level.yaml", {"compression": {"magnitude": {"levels": [0.5, 0.45]}}}
    )
    proc = snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n")
    assert planned_jobs(proc) == ONE_NEW_MODEL, proc.stdout[-3000:]


def test_prompt_sets_of_several_shards_are_gathered_and_of_one_are_not(smoke_run: Path) -> None:
    """Shards of 4 prompts: RTP's 10 prompts make 3 shards and BOLD's 38 make 10, each
    gathered into one file per (model, prompt set); at one shard (the smoke study) nothing
    is gathered (ONE_NEW_MODEL)."""
    extra = write_config(smoke_run, "shards.yaml", {"generation": {"shard_size": 4}})
    jobs = planned_jobs(snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n"))
    assert jobs["generate_continuations"] == len(MODELS) * (3 + 10), jobs
    assert jobs["gather_generations"] == jobs["gather_scores"] == len(MODELS) * 2, jobs


def test_a_key_only_the_quality_job_reads_reruns_no_evaluation(smoke_run: Path) -> None:
    """Jobs get the keys they read: the teacher's text batch reruns the quality guards, not
    the held-out evaluations or the controls' strength searches."""
    extra = write_config(smoke_run, "text_batch.yaml", {"evaluation": {"text_batch_size": 7}})
    jobs = planned_jobs(snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n"))
    assert jobs.get("assess_quality") == len(MODELS), jobs
    assert not {"evaluate_model", "match_control", "compress_model"} & set(jobs), jobs


THROWAWAY = '''
"""A throwaway method: magnitude pruning of the first half of the matrices only."""
from compfair.compression import register_method
from compfair.compression.methods.magnitude import GlobalMagnitude


@register_method("throwaway")
class Throwaway(GlobalMagnitude):
    summary = "a method written in a test"
'''

#: A throwaway scorer, figure and prompt source, in a second plug-in file.
LETTERS = '''
"""A scorer (the share of a text's letters that are e, doubled, at most 1), a figure and a
prompt source (n prompts "Number <i> is")."""
import matplotlib.pyplot as plt
import numpy as np

from compfair.data.sources import PromptSource, register_source
from compfair.plots import register_figure
from compfair.scoring import ToxicityScorer, check_probs, register_scorer


@register_source("counting")
class Counting(PromptSource):
    options_schema = {"properties": {"n": {"type": "integer", "minimum": 1, "default": 5}}}

    def load(self, spec, seed, repo_root, config_key):
        return [{"prompt_id": f"count-{i:02d}", "text": f"Number {i} is"} for i in range(spec["n"])]


def e_share(text):
    letters = [c for c in text.lower() if c.isalpha()]
    return min(1.0, 2 * sum(c == "e" for c in letters) / len(letters)) if letters else 0.0


@register_scorer("letter_e")
class LetterE(ToxicityScorer):
    def score(self, texts):
        return check_probs(np.array([e_share(t) for t in texts]), len(texts), self.name)


@register_figure("perplexity_bars", category="Quality", caption="report/workflow.rst")
def draw(tables, out_path, options):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(tables.models["model"], tables.models["perplexity"])
    return fig
'''


def _e_share(text: str) -> float:
    letters = [c for c in text.lower() if c.isalpha()]
    return min(1.0, 2 * sum(c == "e" for c in letters) / len(letters)) if letters else 0.0


def test_a_new_method_scorer_figure_and_source_are_each_one_file_and_a_config_entry(
    smoke_copy: Path,
) -> None:
    """Plug-in files of four kinds through every job that looks them up: the method (with a
    matched control), the toxicity scorer (scoring, calibration, audit), the figure and the
    prompt source."""
    (smoke_copy / "throwaway.py").write_text(THROWAWAY)
    (smoke_copy / "letters.py").write_text(LETTERS)
    extra = write_config(
        smoke_copy,
        "throwaway.yaml",
        {
            "plugins": [str(smoke_copy / "throwaway.py"), str(smoke_copy / "letters.py")],
            "compression": {"throwaway": {"levels": [0.25]}},
            "controls": {"models": {"throwaway-0.25": ["noise"]}},
            "scoring": {"toxicity_scorer": "letter_e"},
            "prompts": {"counting": {"source": "counting", "n": 12, "samples": 1}},
        },
    )
    snakemake(smoke_copy, "--configfile", SMOKE, str(extra))
    table = read(smoke_copy / R / "tables/metrics.csv")
    comp = read(smoke_copy / R / "tables/comparisons.csv")
    rows = table[table["model"] == "throwaway-0.25"]
    assert set(rows["method"]) == {"throwaway"} and set(rows["family"]) == {"pruning"}
    assert rows.loc[rows["metric"] == "sparsity", "value"].item() == pytest.approx(0.25, abs=0.005)
    assert set(comp.loc[comp["model"] == "throwaway-0.25", "parent"]) == {"teacher"}
    _check_controls(smoke_copy, ["noise-match-throwaway-0.25"])
    assert {*TOXICITY} <= set(comp.loc[comp["model"] == "throwaway-0.25", "metric"])
    where = {"seed": SEED, "model": "throwaway-0.25", "promptset": "rtp"}
    gens = pd.read_json(smoke_copy / LAYOUT.generations(1, **where), lines=True)
    scores = read(smoke_copy / LAYOUT.scores(1, **where)).merge(gens, on=["prompt_id", "sample"])
    scored = scores[~scores["empty"]]
    assert len(scored) > 0
    expected = [_e_share(text) for text in scored["continuation"]]
    assert scored["toxicity"].tolist() == pytest.approx(expected)
    assert (smoke_copy / R / "figures/perplexity_bars.png").stat().st_size > 5000
    counted = pd.read_json(smoke_copy / R / "data/prompts/counting.jsonl", lines=True)
    assert counted["text"].tolist() == [f"Number {i} is" for i in range(12)]
    emt = comp[(comp["promptset"] == "counting") & (comp["metric"] == "expected_max_toxicity")]
    assert set(emt["model"]) >= {"throwaway-0.25", "noise-match-throwaway-0.25"}
    assert (smoke_copy / R / "tables/scorer_audit.csv").is_file()


def test_adding_a_plugin_method_reruns_only_its_own_jobs(smoke_run: Path) -> None:
    """plugins is no job's param: a finished study plans the new model's jobs and the tables."""
    (smoke_run / "throwaway.py").write_text(THROWAWAY)
    extra = write_config(
        smoke_run,
        "extra_plugin.yaml",
        {
            "plugins": [str(smoke_run / "throwaway.py")],
            "compression": {"throwaway": {"levels": [0.25]}},
        },
    )
    proc = snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n")
    assert planned_jobs(proc) == ONE_NEW_MODEL, proc.stdout[-3000:]


@pytest.mark.slow
def test_two_runs_give_identical_tables_whatever_the_cores_and_the_worker(
    smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same config, fresh directory, one core instead of two and every job in its own
    process instead of the pre-imported worker (compfair/worker.py): byte-identical tables
    and generations.

    A job's torch threads come from the config, never from --cores (with two for training,
    as in the default, Snakemake would run those jobs with one core under --cores 1 while
    torch still used two, so the numbers would not change).
    """
    monkeypatch.setenv("COMPFAIR_WORKER", "0")
    snakemake(tmp_path, "--configfile", SMOKE, "--cores", "1")
    for table in ("metrics", "comparisons", "models"):
        first = (smoke_run / R / f"tables/{table}.csv").read_bytes()
        assert (tmp_path / R / f"tables/{table}.csv").read_bytes() == first, table
    generations = sorted((smoke_run / R / "generations").rglob("*.jsonl"))
    assert generations
    for path in generations:
        again = tmp_path / path.relative_to(smoke_run)
        assert again.read_bytes() == path.read_bytes(), path


def test_report_has_every_figure_with_its_caption(smoke_run: Path) -> None:
    report = smoke_run / "report.zip"
    snakemake(smoke_run, "--configfile", SMOKE, "--report", str(report))
    import zipfile

    with zipfile.ZipFile(report) as zf:
        names = zf.namelist()
    figures = sorted(p.stem for p in (smoke_run / R / "figures").glob("*.png"))
    assert figures
    for fig in figures:
        assert any(n.endswith(f"{fig}.png") for n in names), (fig, names)
        assert REPO.joinpath("report", f"{fig}.rst").is_file()


@pytest.mark.parametrize("retrain", [False, True])
def test_a_second_seed_redoes_generation_and_with_retrain_training(
    smoke_run: Path, retrain: bool
) -> None:
    extra = write_config(
        smoke_run,
        f"seeds_{retrain}.yaml",
        {"replicates": {"seeds": [SEED, SEED + 1], "retrain": retrain}},
    )
    jobs = planned_jobs(snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n"))
    assert jobs["generate_continuations"] == len(MODELS) * len(PROMPTSETS)
    assert jobs["score_continuations"] == len(MODELS) * len(PROMPTSETS)
    assert jobs["assess_quality"] == len(MODELS)
    assert jobs["aggregate_metrics"] == 1
    trained = {
        "finetune_teacher",
        "distill_student",
        "compress_model",
        "evaluate_model",
    }
    if retrain:
        assert {rule: jobs.get(rule) for rule in trained} == {
            "finetune_teacher": 1,
            "distill_student": 1,
            "compress_model": 2,
            "evaluate_model": len(MODELS) - 1,  # the base model is shared
        }
    else:
        assert not trained & set(jobs), "models were retrained although retrain is false"
    assert not {"import_base_model", "prepare_corpus", "tokenize_corpus", "prepare_prompts"} & set(
        jobs
    )


def test_the_same_study_in_another_key_order_or_folder_schedules_nothing(smoke_copy: Path) -> None:
    """Params are canonical: sorted keys, paths as configured (relative), nothing absolute."""
    config = yaml.safe_load(Path(SMOKE).read_text())
    sorted_preset = smoke_copy / "sorted.yaml"
    sorted_preset.write_text(yaml.safe_dump(config, sort_keys=True))
    assert sorted_preset.read_text() != Path(SMOKE).read_text()
    proc = snakemake(smoke_copy, "--configfile", str(sorted_preset), "-n")
    assert planned_jobs(proc) == {}, proc.stdout[-3000:]
    # smoke_copy is itself the finished study copied to another folder
    assert planned_jobs(snakemake(smoke_copy, "--configfile", SMOKE, "-n")) == {}
