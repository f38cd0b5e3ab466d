"""Tests for compfair.tables: the tidy tables on small synthetic files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compfair.intrinsic.tables import COLUMNS, ITEM_COLUMNS
from compfair.io import InputError, write_csv, write_json, write_jsonl
from compfair.metrics import Bootstrap, bootstrap_ci, paired_difference_test
from compfair.tables.build import aggregate_metrics
from compfair.tables.models import MODELS_COLUMNS
from compfair.tables.rows import ComparisonRow, MetricRow, SeedMetricRow, columns

METRICS_COLUMNS = columns(MetricRow)
PER_SEED_COLUMNS = columns(SeedMetricRow)
COMPARISON_COLUMNS = columns(ComparisonRow)

RTP_PROMPTS = [
    {
        "prompt_id": p,
        "promptset": "rtp",
        "text": "t",
        "domain": None,
        "group": None,
        "source_scores": {},
    }
    for p in ("r1", "r2")
]
BOLD_PROMPTS = [
    {"prompt_id": "b1", "promptset": "bold", "text": "t", "domain": "gender", "group": "men"},
    {"prompt_id": "b2", "promptset": "bold", "text": "t", "domain": "gender", "group": "women"},
    {"prompt_id": "b3", "promptset": "bold", "text": "t", "domain": "race", "group": "asian"},
    {"prompt_id": "b4", "promptset": "bold", "text": "t", "domain": "race", "group": "black"},
]


def _scores(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["prompt_id", "sample", "toxicity", "sentiment"])


#: (model, toxicity shift, parent); listed out of display order on purpose.
MODELS = (
    ("magnitude-0.50", 0.2, "teacher"),
    ("teacher", 0.0, "base"),
    ("kd-0.50", 0.1, "teacher"),
    ("base", 0.05, None),
)
VARIANTS = [
    {"model": "base", "family": "base", "method": "none", "level": None, "parent": None},
    {
        "model": "teacher",
        "family": "finetuned",
        "method": "finetune",
        "level": None,
        "parent": "base",
    },
    {
        "model": "kd-0.50",
        "family": "distillation",
        "method": "kd",
        "level": "0.50",
        "parent": "teacher",
    },
    {
        "model": "magnitude-0.50",
        "family": "pruning",
        "method": "magnitude",
        "level": "0.50",
        "parent": "teacher",
    },
]
PERPLEXITY = {"base": 20.0, "teacher": 10.0, "kd-0.50": 15.0, "magnitude-0.50": 220.0}


def _write_scores(tmp_path: Path, seed: int, model: str, shift: float) -> dict:
    """rtp and bold scores of one (seed, model); ``shift`` moves toxicity and one sentiment."""
    rtp = tmp_path / f"s{seed}-{model}-rtp.csv"
    bold = tmp_path / f"s{seed}-{model}-bold.csv"
    write_csv(
        rtp,
        _scores(
            [
                ("r1", 0, 0.1 + shift, 0.0),
                ("r1", 1, 0.7 + shift, 0.0),
                ("r2", 0, 0.2 + shift, 0.0),
                ("r2", 1, 0.3 + shift, 0.0),
            ]
        ),
    )
    write_csv(
        bold,
        _scores(
            [
                ("b1", 0, 0.0, 0.6),
                ("b1", 1, 0.0, -0.6),  # men: mean 0, pos 1/2, neg 1/2
                ("b2", 0, 0.0, 0.8),
                ("b2", 1, 0.0, 0.4),  # women: mean 0.6, pos 1/2, neg 0
                ("b3", 0, 0.0, 0.2),
                ("b3", 1, 0.0, 0.2),  # asian: 0.2
                ("b4", 0, 0.0, -0.1),
                ("b4", 1, 0.0, -0.1 + shift),  # black
            ]
        ),
    )
    return {(seed, model, "rtp"): rtp, (seed, model, "bold"): bold}


def _write_eval(path: Path, model: str, perplexity: float) -> Path:
    write_json(
        path,
        {
            "model": model,
            "perplexity": perplexity,
            "heldout_tokens": 100,
            "n_parameters": 1000,
            "n_prunable": 800,
            "sparsity": 0.5 if "magnitude" in model else 0.0,
        },
    )
    return path


@pytest.fixture()
def files(tmp_path: Path) -> dict:
    write_jsonl(tmp_path / "rtp.jsonl", RTP_PROMPTS)
    write_jsonl(tmp_path / "bold.jsonl", BOLD_PROMPTS)
    score_files: dict = {}
    eval_files: dict = {}
    for model, shift, _ in MODELS:
        score_files.update(_write_scores(tmp_path, 1, model, shift))
        eval_files[(1, model)] = _write_eval(tmp_path / f"{model}.json", model, PERPLEXITY[model])
    tables = tmp_path / "tables"
    return {
        "score_files": score_files,
        "prompt_files": {"rtp": tmp_path / "rtp.jsonl", "bold": tmp_path / "bold.jsonl"},
        "eval_files": eval_files,
        "quality_files": {},
        "intrinsic_files": {},
        "variants": VARIANTS,
        "outputs": {
            name: tables / f"{name}.csv"
            for name in ("metrics", "per_seed", "comparisons", "models")
        },
        "quality_thresholds": {
            "max_perplexity_ratio": 2.0,
            "min_distinct_2": 0.2,
            "max_empty_share": 0.5,
        },
        "bootstrap": {"n_resamples": 200, "seed": 0, "min_units": 2},
        "samples": {"rtp": 2, "bold": 2},
    }


def _row(table: pd.DataFrame, model: str, metric: str, promptset: str = "", group: str = ""):
    t = table.fillna({"promptset": "", "group": ""})
    rows = t[
        (t["model"] == model)
        & (t["metric"] == metric)
        & (t["promptset"] == promptset)
        & (t["group"] == group)
    ]
    assert len(rows) == 1, (model, metric, promptset, group, rows)
    return rows.iloc[0]


def _value(
    table: pd.DataFrame, model: str, metric: str, promptset: str = "", group: str = ""
) -> float:
    return float(_row(table, model, metric, promptset, group)["value"])


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).fillna(
        {"promptset": "", "group": ""}
    )


def test_values_and_differences_to_each_models_own_parent(files: dict) -> None:
    table = aggregate_metrics(**files)
    assert list(table.columns) == METRICS_COLUMNS
    # rtp, teacher: maxima 0.7 and 0.3; base: 0.75 and 0.35
    assert _value(table, "teacher", "expected_max_toxicity", "rtp") == pytest.approx(0.5)
    assert _value(table, "teacher", "expected_max_toxicity_std", "rtp") == pytest.approx(0.2)
    assert _value(table, "teacher", "toxicity_probability", "rtp") == pytest.approx(0.5)
    assert _value(table, "teacher", "mean_toxicity", "rtp") == pytest.approx(1.3 / 4)
    assert _value(table, "base", "expected_max_toxicity", "rtp") == pytest.approx(0.55)
    assert _value(table, "magnitude-0.50", "toxicity_probability", "rtp") == pytest.approx(1.0)
    # paired differences: each model minus its own parent (the teacher's parent is base)
    assert _value(table, "teacher", "expected_max_toxicity_diff", "rtp") == pytest.approx(-0.05)
    assert _value(table, "kd-0.50", "expected_max_toxicity_diff", "rtp") == pytest.approx(0.1)
    assert _value(table, "magnitude-0.50", "toxicity_probability_diff", "rtp") == pytest.approx(0.5)
    assert not table["metric"][table["model"] == "base"].str.endswith("_diff").any()  # no parent
    diff = _row(table, "kd-0.50", "mean_toxicity_diff", "rtp")
    # every prompt moves by 0.1: no resampling interval, and the note says so
    assert math.isnan(diff["ci_low"]) and math.isnan(diff["ci_high"])
    assert "same value" in diff["ci_note"]
    # group metrics have paired differences too: black is (-0.1 + (-0.1 + shift)) / 2
    assert _value(table, "teacher", "sentiment_mean", "bold", "black") == pytest.approx(-0.1)
    assert _value(table, "kd-0.50", "sentiment_mean_diff", "bold", "black") == pytest.approx(0.05)
    assert _value(table, "teacher", "sentiment_mean_diff", "bold", "black") == pytest.approx(-0.025)
    assert _value(table, "teacher", "sentiment_positive_share", "bold", "men") == 0.5
    assert _value(table, "teacher", "sentiment_gap", "bold", "gender") == pytest.approx(0.6)
    assert _value(table, "kd-0.50", "sentiment_gap", "bold", "race") == pytest.approx(0.25)
    assert _value(table, "kd-0.50", "perplexity") == pytest.approx(15.0)
    # the model columns come from the variants
    kd = table[table["model"] == "kd-0.50"]
    assert kd["family"].eq("distillation").all() and kd["parent"].eq("teacher").all()
    assert table.loc[table["model"] == "base", "parent"].isna().all()
    with_ci = table[table["ci_low"].notna()]
    assert (with_ci["ci_low"] <= with_ci["value"] + 1e-12).all()
    assert (with_ci["value"] <= with_ci["ci_high"] + 1e-12).all()


def test_comparisons_table(files: dict) -> None:
    aggregate_metrics(**files)
    comp = _read(files["outputs"]["comparisons"])
    assert list(comp.columns) == COMPARISON_COLUMNS
    pairs = set(zip(comp["model"], comp["parent"], strict=True))
    assert pairs == {("teacher", "base"), ("kd-0.50", "teacher"), ("magnitude-0.50", "teacher")}
    row = comp[
        (comp["model"] == "teacher")
        & (comp["metric"] == "expected_max_toxicity")
        & (comp["promptset"] == "rtp")
        & (comp["group"] == "")
    ].iloc[0]
    assert (row["value"], row["parent_value"], row["diff"]) == pytest.approx((0.5, 0.55, -0.05))
    assert row["n_units"] == 2 and row["n_seeds"] == 1
    # every toxicity and sentiment metric of every (model, prompt set) against its parent
    for model in ("teacher", "kd-0.50", "magnitude-0.50"):
        mine = comp[comp["model"] == model]
        for metric in ("expected_max_toxicity", "toxicity_probability", "mean_toxicity"):
            assert (
                (mine["metric"] == metric) & (mine["promptset"] == "rtp") & (mine["group"] == "")
            ).sum() == 1
        for group in ("men", "women", "asian", "black"):
            assert ((mine["metric"] == "sentiment_mean") & (mine["group"] == group)).sum() == 1
    np.testing.assert_allclose(comp["diff"], comp["value"] - comp["parent_value"], atol=1e-12)
    # p-values, adjusted (Benjamini-Hochberg) within one metric on one prompt set
    finite = comp.dropna(subset=["p_value"])
    assert len(finite) and (finite["p_adjusted"] >= finite["p_value"] - 1e-12).all()
    assert finite["p_value"].between(0, 1).all()
    # one prompt a group: the corrected disparity cannot estimate the noise, so it is not reported
    assert not (comp["metric"] == "sentiment_disparity").any()


def test_flags_are_relative_to_the_parent(files: dict) -> None:
    table = aggregate_metrics(**files)
    # magnitude-0.50: perplexity 220 against its parent's 10 (ratio 22 > 2); the rest is fine
    assert table.loc[table["model"] == "magnitude-0.50", "flagged"].all()
    assert not table.loc[table["model"] != "magnitude-0.50", "flagged"].any()
    models = _read(files["outputs"]["models"])
    assert list(models.columns) == MODELS_COLUMNS
    assert models["model"].tolist() == ["base", "teacher", "kd-0.50", "magnitude-0.50"]
    mag = models.set_index("model").loc["magnitude-0.50"]
    assert mag["perplexity_ratio"] == pytest.approx(22.0)
    assert "perplexity 22 x the parent's > 2" in mag["flag_reasons"]
    assert math.isnan(models.set_index("model").loc["base", "perplexity_ratio"])
    comp = _read(files["outputs"]["comparisons"])
    assert comp.loc[comp["model"] == "magnitude-0.50", "flagged"].all()
    # a looser limit lets it pass
    loose = aggregate_metrics(**{**files, "quality_thresholds": {"max_perplexity_ratio": 30.0}})
    assert not loose["flagged"].any()


def _quality(distinct_2: float, empty: float = 0.0, teacher_perplexity: float = 40.0) -> dict:
    return {
        "distinct_1": 0.5,
        "distinct_2": distinct_2,
        "distinct_3": 0.9,
        "empty_share": empty,
        "teacher_perplexity": teacher_perplexity,
        "n_continuations": 8,
        "gender_polarity_male_share": 0.25,
        "gender_polarity_female_share": 0.125,
    }


def test_quality_guards_against_the_parent(files: dict, tmp_path: Path) -> None:
    blocks = {
        "base": _quality(0.8),
        "teacher": _quality(0.8),
        "kd-0.50": _quality(0.55),  # distinct-2 31 % below the teacher's: flagged (> 25 %)
        "magnitude-0.50": _quality(0.7, teacher_perplexity=90.0),  # 2.25 x the teacher's
    }
    for model, block in blocks.items():
        path = tmp_path / f"q-{model}.json"
        write_json(path, {"promptsets": {"rtp": block, "bold": block}})
        files["quality_files"][(1, model)] = path
    thresholds = {
        "max_teacher_perplexity_ratio": 2.0,
        "max_distinct_2_drop": 0.25,
        "max_empty_share": 0.05,
    }
    table = aggregate_metrics(**{**files, "quality_thresholds": thresholds})
    flagged = set(table.loc[table["flagged"], "model"])
    assert flagged == {"kd-0.50", "magnitude-0.50"}
    reasons = _read(files["outputs"]["models"]).set_index("model")["flag_reasons"]
    assert "rtp: distinct_2 31.2% below the parent's > 25%" in reasons["kd-0.50"]
    assert "bold: teacher_perplexity 2.25 x the parent's > 2" in reasons["magnitude-0.50"]
    assert _value(table, "kd-0.50", "distinct_2", "bold") == pytest.approx(0.55)
    assert _value(table, "kd-0.50", "gender_polarity_male_share", "rtp") == 0.25


def test_metrics_over_non_empty_continuations(files: dict) -> None:
    """A model whose toxic-free samples are empty must not look harmless."""
    for model in ("teacher", "magnitude-0.50"):
        path = files["score_files"][(1, model, "rtp")]
        frame = pd.read_csv(path)
        frame["empty"] = False
        if model == "magnitude-0.50":  # r1: one toxic sample and one empty; r2: nothing at all
            frame["toxicity"] = [0.9, 0.0, 0.0, 0.0]
            frame["empty"] = [False, True, True, True]
        write_csv(path, frame)
    table = aggregate_metrics(**files)
    assert _value(table, "magnitude-0.50", "expected_max_toxicity", "rtp") == pytest.approx(0.45)
    assert _value(
        table, "magnitude-0.50", "expected_max_toxicity_nonempty", "rtp"
    ) == pytest.approx(0.9)
    assert _value(table, "magnitude-0.50", "mean_toxicity_nonempty", "rtp") == pytest.approx(0.9)
    assert _value(table, "teacher", "expected_max_toxicity_nonempty", "rtp") == pytest.approx(0.5)
    # paired over the prompts both have non-empty samples for: r1 only (0.9 vs the teacher's 0.7)
    comp = _read(files["outputs"]["comparisons"])
    row = comp[
        (comp["model"] == "magnitude-0.50") & (comp["metric"] == "expected_max_toxicity_nonempty")
    ].iloc[0]
    assert (row["value"], row["parent_value"], row["diff"], row["n_units"]) == pytest.approx(
        (0.9, 0.7, 0.2, 1)
    )
    assert (
        not (table["metric"] == "expected_max_toxicity_nonempty")
        .loc[table["model"] == "kd-0.50"]
        .any()
    )


def test_shape_order_and_determinism(files: dict) -> None:
    table = aggregate_metrics(**files)
    assert not table.duplicated(["model", "promptset", "group", "metric"]).any()
    assert list(dict.fromkeys(table["model"])) == ["base", "teacher", "kd-0.50", "magnitude-0.50"]
    rtp = table[table["promptset"] == "rtp"]
    assert not rtp["metric"].str.startswith("sentiment").any() and rtp["group"].eq("").all()
    text = files["outputs"]["metrics"].read_bytes()
    comparisons = files["outputs"]["comparisons"].read_bytes()
    shuffled = dict(reversed(list(files["score_files"].items())))
    again = aggregate_metrics(**{**files, "score_files": shuffled})
    pd.testing.assert_frame_equal(table, again)
    assert files["outputs"]["metrics"].read_bytes() == text
    assert files["outputs"]["comparisons"].read_bytes() == comparisons
    other = aggregate_metrics(**{**files, "bootstrap": {"n_resamples": 200, "seed": 1}})
    pd.testing.assert_series_equal(table["value"], other["value"])
    per_seed = pd.read_csv(files["outputs"]["per_seed"])
    assert list(per_seed.columns) == PER_SEED_COLUMNS and len(per_seed) == len(table)


def test_two_seeds_mean_and_sd(files: dict, tmp_path: Path) -> None:
    for model, shift, _ in MODELS:  # seed 2: every model's rtp toxicity 0.1 higher, same models
        files["score_files"].update(_write_scores(tmp_path, 2, model, shift + 0.1))
        files["eval_files"][(2, model)] = files["eval_files"][(1, model)]
    table = aggregate_metrics(**files)
    emt = _row(table, "teacher", "expected_max_toxicity", "rtp")
    assert emt["value"] == pytest.approx(0.55) and emt["n_seeds"] == 2
    assert emt["seed_sd"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    # the interval is over the seed-averaged per-prompt maxima (0.75, 0.35)
    assert emt["ci_low"] == pytest.approx(0.35) and emt["ci_high"] == pytest.approx(0.75)
    diff = _row(table, "kd-0.50", "expected_max_toxicity_diff", "rtp")
    assert diff["value"] == pytest.approx(0.1) and diff["n_seeds"] == 2
    ppl = _row(table, "kd-0.50", "perplexity")  # one training seed behind both: counted once
    assert (
        ppl["value"] == pytest.approx(15.0) and ppl["n_seeds"] == 1 and math.isnan(ppl["seed_sd"])
    )
    comp = _read(files["outputs"]["comparisons"])
    assert comp["n_seeds"].eq(2).all()


def _benchmark_files(tmp_path: Path, shares: list[float]) -> tuple[Path, Path]:
    """A teacher's CrowS-Pairs table (point values) and its per-item values: pairs i0.. of
    ``shares`` (100 or 0), the first 10 about gender, the rest about age."""
    groups = ["gender" if k < 10 else "age" for k in range(len(shares))]
    items = pd.DataFrame(
        {
            "benchmark": "crows_pairs",
            "item_id": [f"i{k}" for k in range(len(shares))],
            "group": groups,
            "metric": "crows_pairs_stereo_share",
            "value": shares,
        }
    )
    write_csv(tmp_path / "items-teacher.csv", items[list(ITEM_COLUMNS)])
    means = items.groupby("group")["value"].mean()
    rows = [
        ("crows_pairs", "", "crows_pairs_stereo_share", float(np.mean(shares))),
        *(("crows_pairs", g, "crows_pairs_stereo_share", means[g]) for g in ("age", "gender")),
        ("crows_pairs", "", "crows_pairs_conditional_skipped", 3.0),
    ]
    write_csv(tmp_path / "intrinsic-teacher.csv", pd.DataFrame(rows, columns=list(COLUMNS)))
    return tmp_path / "intrinsic-teacher.csv", tmp_path / "items-teacher.csv"


def test_intrinsic_rows_get_their_intervals_from_the_items(files: dict, tmp_path: Path) -> None:
    """evaluate_model writes point values; the tables bootstrap the per-item values, seeded
    from intrinsic_seed (the study's seed) and with the bootstrap settings of the tables."""
    shares = [100.0, 0.0, 100.0, 100.0, 0.0, 100.0, 0.0, 0.0, 100.0, 100.0, 0.0]
    points, items = _benchmark_files(tmp_path, shares)
    files["intrinsic_files"][(1, "teacher")] = points
    files["item_files"] = {(1, "teacher"): items}
    table = aggregate_metrics(**files, intrinsic_seed=7)
    row = _row(table, "teacher", "crows_pairs_stereo_share", "crows_pairs")
    boot = Bootstrap.from_config({**files["bootstrap"], "seed": 7})
    key = ("crows_pairs", "", "crows_pairs_stereo_share")
    expected = bootstrap_ci(np.array(shares), np.mean, **boot.kwargs(*key))
    assert row["value"] == np.mean(shares) and row["ci_note"] == ""
    assert (row["ci_low"], row["ci_high"]) == expected
    age = _row(table, "teacher", "crows_pairs_stereo_share", "crows_pairs", "age")
    assert age["value"] == 0.0 and age["ci_note"].startswith("fewer than 2 units")
    skipped = _row(table, "teacher", "crows_pairs_conditional_skipped", "crows_pairs")
    assert skipped["value"] == 3.0 and np.isnan(skipped["ci_low"]) and skipped["ci_note"] == ""
    wider = {**files, "bootstrap": {**files["bootstrap"], "confidence": 0.99}}
    wider = aggregate_metrics(**wider, intrinsic_seed=7)
    wider = _row(wider, "teacher", "crows_pairs_stereo_share", "crows_pairs")
    assert wider["ci_low"] < row["ci_low"] and wider["ci_high"] >= row["ci_high"]


def test_intrinsic_tables_and_items_must_agree(files: dict, tmp_path: Path) -> None:
    points, items = _benchmark_files(tmp_path, [100.0, 0.0] * 6)
    files["intrinsic_files"][(1, "teacher")] = points
    files["item_files"] = {(1, "teacher"): items}
    table = pd.read_csv(points, keep_default_na=False)
    write_csv(points, table[table["group"] != "age"])
    with pytest.raises(InputError, match="an interval of a row the table lacks"):
        aggregate_metrics(**files)
    points.write_text("promptset,group,metric,value\nc,,m,x\n")
    with pytest.raises(InputError, match="line 2: value"):
        aggregate_metrics(**files)


def test_a_scores_file_missing_a_sample_is_an_error(files: dict) -> None:
    path = files["score_files"][(1, "teacher", "rtp")]
    write_csv(path, _scores([("r1", 0, 0.1, 0.0), ("r1", 1, 0.1, 0.0), ("r2", 0, 0.1, 0.0)]))
    with pytest.raises(InputError, match="prompt 'r2' has 1 scored samples, expected 2") as err:
        aggregate_metrics(**files)
    assert str(path) in str(err.value) and "rtp.jsonl" in str(err.value)
    assert not any(p.exists() for p in files["outputs"].values())


def test_missing_and_unknown_prompts_are_errors(files: dict) -> None:
    path = files["score_files"][(1, "teacher", "rtp")]
    write_csv(path, _scores([("r1", 0, 0.1, 0.0), ("r1", 1, 0.1, 0.0)]))
    with pytest.raises(InputError, match="no scores for 1 prompt"):
        aggregate_metrics(**files)
    write_csv(path, _scores([("r1", 0, 0.1, 0.0), ("r2", 0, 0.1, 0.0), ("zz", 0, 0.1, 0.0)]))
    with pytest.raises(InputError, match="zz"):
        aggregate_metrics(**files)
    path.write_text("prompt_id,sample,toxicity,sentiment\nr1,0,0.1,0\nr2,0,,0\n")
    with pytest.raises(InputError, match="line 3"):
        aggregate_metrics(**files)


def test_regard_rows_per_group_when_scored(files: dict) -> None:
    regard_negative = {"b1": 0.8, "b2": 0.2, "b3": 0.5, "b4": 0.1}
    for (_seed, _model, promptset), path in files["score_files"].items():
        if promptset != "bold":
            continue
        frame = pd.read_csv(path)
        frame["regard_negative"] = frame["prompt_id"].map(regard_negative)
        frame["regard_positive"] = 1 - frame["regard_negative"]
        write_csv(path, frame)
    table = aggregate_metrics(**files)
    groups = {p["prompt_id"]: p["group"] for p in BOLD_PROMPTS}
    for prompt_id, value in regard_negative.items():
        assert _value(
            table, "teacher", "regard_negative", "bold", groups[prompt_id]
        ) == pytest.approx(value)
    assert _value(table, "teacher", "regard_negative_gap", "bold", "gender") == pytest.approx(0.6)
    assert _value(table, "kd-0.50", "regard_negative_diff", "bold", "men") == pytest.approx(0.0)
    plain = aggregate_metrics(
        **{**files, "score_files": {k: v for k, v in files["score_files"].items() if k[2] == "rtp"}}
    )
    assert not plain["metric"].str.startswith("regard").any()


def test_intrinsic_benchmarks_are_compared_item_by_item(files: dict, tmp_path: Path) -> None:
    def items(path: Path, values: list[float]) -> Path:
        rows = [
            ("crows_pairs", f"i{k}", "gender" if k < 2 else "race", "crows_pairs_stereo_share", v)
            for k, v in enumerate(values)
        ]
        write_csv(
            path, pd.DataFrame(rows, columns=["benchmark", "item_id", "group", "metric", "value"])
        )
        return path

    files["item_files"] = {
        (1, "teacher"): items(tmp_path / "t.csv", [100, 0, 100, 0]),
        (1, "kd-0.50"): items(tmp_path / "k.csv", [100, 100, 100, 100]),
        (1, "base"): items(tmp_path / "b.csv", [100, 0, 100, 0]),
    }
    aggregate_metrics(**files)
    comp = _read(files["outputs"]["comparisons"])
    crows = comp[comp["promptset"] == "crows_pairs"].set_index(["model", "group"])
    assert crows.loc[("kd-0.50", ""), ["value", "parent_value", "diff", "n_units"]].tolist() == [
        100,
        50,
        50,
        4,
    ]
    assert (
        crows.loc[("kd-0.50", "gender"), "diff"] == 50
        and crows.loc[("kd-0.50", "race"), "diff"] == 50
    )
    assert crows.loc[("teacher", ""), "diff"] == 0 and crows.loc[("teacher", ""), "p_value"] == 1.0
    assert "magnitude-0.50" not in crows.index.get_level_values(0)  # it has no item file


def test_intrinsic_comparisons_pool_the_seeds_and_both_tables_agree(
    files: dict, tmp_path: Path
) -> None:
    """Three training seeds: one paired bootstrap over (seed, item), as for the prompt sets;
    comparisons.csv and metrics.csv's _diff row give the same difference and interval."""
    rng = np.random.default_rng(0)
    parent = rng.random((3, 12)) * 100
    model = parent + rng.normal(5.0, 10.0, (3, 12))
    files["item_files"] = {}
    for seed in (1, 2, 3):
        for name, values in (("teacher", parent), ("kd-0.50", model)):
            rows = [
                ("crows_pairs", f"i{k:02d}", "gender", "crows_pairs_stereo_share", v)
                for k, v in enumerate(values[seed - 1])
            ]
            path = tmp_path / f"{name}-{seed}.csv"
            write_csv(path, pd.DataFrame(rows, columns=list(ITEM_COLUMNS)))
            files["item_files"][(seed, name)] = path
    table = aggregate_metrics(**files)
    comp = _read(files["outputs"]["comparisons"])
    row = comp[(comp["model"] == "kd-0.50") & (comp["promptset"] == "crows_pairs")]
    row = row[row["group"] == ""].iloc[0]
    boot = Bootstrap.from_config(files["bootstrap"])
    key = ("crows_pairs", "", "crows_pairs_stereo_share")
    expected = paired_difference_test(model, parent, **boot.kwargs("kd-0.50", "diff", *key))
    assert row["n_seeds"] == 3 and row["n_units"] == 12
    assert [row["diff"], row["ci_low"], row["ci_high"], row["p_value"]] == pytest.approx(
        list(expected)
    )
    diff = _row(table, "kd-0.50", "crows_pairs_stereo_share_diff", "crows_pairs")
    assert [diff["value"], diff["ci_low"], diff["ci_high"]] == pytest.approx(list(expected[:3]))
    assert diff["n_seeds"] == 3
