"""Tests for compfair.aggregate: the tidy metrics tables on small synthetic files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compfair.aggregate import (
    METRICS_COLUMNS,
    PER_SEED_COLUMNS,
    aggregate_metrics,
    model_compression,
)
from compfair.io import InputError, write_csv, write_json, write_jsonl


@pytest.mark.parametrize(
    "model_id, expected",
    [
        ("teacher", ("none", None)),
        ("student", ("distillation", None)),
        ("student-6l", ("distillation", None)),
        ("pruned-0.30", ("pruning", 0.30)),
        ("pruned-0.90", ("pruning", 0.90)),
        ("base", ("none", None)),
        ("distilgpt2", ("none", None)),
    ],
)
def test_model_compression(model_id: str, expected: tuple) -> None:
    assert model_compression(model_id) == expected


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


MODELS = (("pruned-0.50", 0.2), ("teacher", 0.0), ("student", 0.1))


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
            "sparsity": 0.5 if "pruned" in model else 0.0,
        },
    )
    return path


@pytest.fixture()
def files(tmp_path: Path) -> dict:
    write_jsonl(tmp_path / "rtp.jsonl", RTP_PROMPTS)
    write_jsonl(tmp_path / "bold.jsonl", BOLD_PROMPTS)
    score_files: dict = {}
    eval_files: dict = {}
    for model, shift in MODELS:
        score_files.update(_write_scores(tmp_path, 1, model, shift))
        eval_files[(1, model)] = _write_eval(tmp_path / f"{model}.json", model, 20.0 + 10 * shift)
    return {
        "score_files": score_files,
        "prompt_files": {"rtp": tmp_path / "rtp.jsonl", "bold": tmp_path / "bold.jsonl"},
        "eval_files": eval_files,
        "quality_files": {},
        "intrinsic_files": {},
        "model_info": {
            "teacher": ("none", None),
            "student": ("distillation", None),
            "pruned-0.50": ("pruning", 0.5),
        },
        "out_csv": tmp_path / "tables" / "metrics.csv",
        "out_per_seed_csv": tmp_path / "tables" / "metrics_per_seed.csv",
        "quality_thresholds": {"min_distinct_2": 0.2, "max_empty_share": 0.5},
        "bootstrap": {"n_resamples": 200, "seed": 0},
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


def test_aggregate_values(files: dict) -> None:
    table = aggregate_metrics(**files)
    assert list(table.columns) == METRICS_COLUMNS
    on_disk = pd.read_csv(files["out_csv"])
    assert list(on_disk.columns) == METRICS_COLUMNS
    assert len(on_disk) == len(table)
    # rtp, teacher: maxima 0.7 and 0.3
    assert _value(table, "teacher", "expected_max_toxicity", "rtp") == pytest.approx(0.5)
    assert _value(table, "teacher", "expected_max_toxicity_std", "rtp") == pytest.approx(0.2)
    assert _value(table, "teacher", "toxicity_probability", "rtp") == pytest.approx(0.5)
    assert _value(table, "teacher", "mean_toxicity", "rtp") == pytest.approx(1.3 / 4)
    # pruned: maxima 0.9 and 0.5 -> both >= 0.5
    assert _value(table, "pruned-0.50", "expected_max_toxicity", "rtp") == pytest.approx(0.7)
    assert _value(table, "pruned-0.50", "toxicity_probability", "rtp") == pytest.approx(1.0)
    # paired differences to the teacher (none for the teacher itself)
    assert _value(table, "student", "expected_max_toxicity_diff", "rtp") == pytest.approx(0.1)
    assert _value(table, "pruned-0.50", "toxicity_probability_diff", "rtp") == pytest.approx(0.5)
    assert _value(table, "pruned-0.50", "mean_toxicity_diff", "rtp") == pytest.approx(0.2)
    diff = _row(table, "student", "mean_toxicity_diff", "rtp")
    assert diff["ci_low"] == pytest.approx(0.1) and diff["ci_high"] == pytest.approx(0.1)
    assert not table[(table["model"] == "teacher") & table["metric"].str.endswith("_diff")].shape[0]
    # bold sentiment and toxicity per group for the teacher
    assert _value(table, "teacher", "sentiment_mean", "bold", "men") == pytest.approx(0.0)
    assert _value(table, "teacher", "sentiment_positive_share", "bold", "men") == 0.5
    assert _value(table, "teacher", "sentiment_negative_share", "bold", "men") == 0.5
    assert _value(table, "teacher", "sentiment_mean", "bold", "women") == pytest.approx(0.6)
    assert _value(table, "teacher", "sentiment_negative_share", "bold", "women") == 0.0
    assert _value(table, "teacher", "mean_toxicity", "bold", "women") == 0.0
    assert _value(table, "teacher", "expected_max_toxicity", "bold", "asian") == 0.0
    # per-domain disparities
    assert _value(table, "teacher", "sentiment_gap", "bold", "gender") == pytest.approx(0.6)
    assert _value(table, "teacher", "sentiment_group_sd", "bold", "gender") == pytest.approx(0.3)
    assert _value(table, "teacher", "sentiment_gap", "bold", "race") == pytest.approx(0.3)
    assert _value(table, "student", "sentiment_gap", "bold", "race") == pytest.approx(0.25)
    assert _value(table, "student", "toxicity_gap", "bold", "race") == 0.0
    # model-level rows
    assert _value(table, "student", "perplexity") == pytest.approx(21.0)
    assert _value(table, "pruned-0.50", "sparsity") == 0.5
    assert _value(table, "teacher", "n_parameters") == 1000
    # one seed: no seed_sd; intervals around the value where there is one
    assert table["n_seeds"].eq(1).all() and table["seed_sd"].isna().all()
    assert not table["flagged"].any()
    with_ci = table[table["ci_low"].notna()]
    assert set(table.loc[table["ci_low"].isna(), "metric"]) == {
        "perplexity",
        "n_parameters",
        "sparsity",
    }
    assert (with_ci["ci_low"] <= with_ci["value"] + 1e-12).all()
    assert (with_ci["value"] <= with_ci["ci_high"] + 1e-12).all()
    emt = _row(table, "teacher", "expected_max_toxicity", "rtp")
    assert emt["ci_low"] == pytest.approx(0.3) and emt["ci_high"] == pytest.approx(0.7)
    # per-seed table: the same values, one seed
    per_seed = pd.read_csv(files["out_per_seed_csv"])
    assert list(per_seed.columns) == PER_SEED_COLUMNS
    assert per_seed["seed"].eq(1).all() and len(per_seed) == len(table)
    np.testing.assert_allclose(per_seed["value"], table["value"])
    np.testing.assert_allclose(per_seed["ci_low"], table["ci_low"])


def test_aggregate_shape_and_order(files: dict) -> None:
    table = aggregate_metrics(**files)
    # one row per (model, promptset, group, metric)
    assert not table.duplicated(["model", "promptset", "group", "metric"]).any()
    # eval + 2 x (4 toxicity) + 4 groups x 5 + 2 domains x 4 disparities, + 2 x 3 diffs
    teacher = 3 + 2 * 4 + 4 * 5 + 2 * 4
    assert table.groupby("model").size().to_dict() == {
        "teacher": teacher,
        "student": teacher + 6,
        "pruned-0.50": teacher + 6,
    }
    assert list(dict.fromkeys(table["model"])) == ["teacher", "student", "pruned-0.50"]
    assert table.loc[table["model"] == "pruned-0.50", "compression"].eq("pruning").all()
    assert table.loc[table["model"] == "pruned-0.50", "level"].eq(0.5).all()
    assert table.loc[table["model"] == "student", "compression"].eq("distillation").all()
    assert table.loc[table["model"] == "teacher", "level"].isna().all()
    # rtp has no groups: no sentiment or group rows for it
    rtp = table[table["promptset"] == "rtp"]
    assert not rtp["metric"].str.startswith("sentiment").any()
    assert rtp["group"].eq("").all()
    # deterministic: input dict order does not matter, the file is byte-identical
    text = files["out_csv"].read_bytes()
    per_seed = files["out_per_seed_csv"].read_bytes()
    shuffled = dict(reversed(list(files["score_files"].items())))
    again = aggregate_metrics(**{**files, "score_files": shuffled})
    pd.testing.assert_frame_equal(table, again)
    assert files["out_csv"].read_bytes() == text
    assert files["out_per_seed_csv"].read_bytes() == per_seed
    lines = text.decode().splitlines()
    assert lines[0] == ",".join(METRICS_COLUMNS)
    assert lines[1].startswith("teacher,none,,,,perplexity,20.0,,,,1,False")
    # another bootstrap seed may move the intervals, never the values
    other = aggregate_metrics(**{**files, "bootstrap": {"n_resamples": 200, "seed": 1}})
    pd.testing.assert_series_equal(table["value"], other["value"])


def test_two_seeds_mean_and_sd(files: dict, tmp_path: Path) -> None:
    # seed 2: every model's rtp toxicity 0.1 higher; same training seed (same eval file)
    for model, shift in MODELS:
        files["score_files"].update(_write_scores(tmp_path, 2, model, shift + 0.1))
        files["eval_files"][(2, model)] = files["eval_files"][(1, model)]
    table = aggregate_metrics(**files)
    emt = _row(table, "teacher", "expected_max_toxicity", "rtp")
    assert emt["value"] == pytest.approx((0.5 + 0.6) / 2)
    assert emt["seed_sd"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert emt["n_seeds"] == 2
    # the interval is over the seed-averaged per-prompt maxima (0.75, 0.35)
    assert emt["ci_low"] == pytest.approx(0.35) and emt["ci_high"] == pytest.approx(0.75)
    prob = _row(table, "teacher", "toxicity_probability", "rtp")
    assert prob["value"] == pytest.approx(0.5)  # seed 1: 0.7, 0.3; seed 2: 0.8, 0.4
    assert prob["seed_sd"] == pytest.approx(0.0)
    # student, race: black is (-0.1 + 0.0) / 2 in seed 1 and (-0.1 + 0.1) / 2 in seed 2,
    # asian 0.2: gaps 0.25 and 0.2
    gap = _row(table, "student", "sentiment_gap", "bold", "race")
    assert gap["value"] == pytest.approx((0.25 + 0.2) / 2)
    assert gap["seed_sd"] == pytest.approx(np.std([0.25, 0.2], ddof=1))
    diff = _row(table, "student", "expected_max_toxicity_diff", "rtp")
    assert diff["value"] == pytest.approx(0.1) and diff["n_seeds"] == 2
    # eval rows: one training seed behind both seeds is counted once
    ppl = _row(table, "student", "perplexity")
    assert ppl["value"] == pytest.approx(21.0) and ppl["n_seeds"] == 1
    assert math.isnan(ppl["seed_sd"])
    per_seed = pd.read_csv(files["out_per_seed_csv"], keep_default_na=False, na_values=[""])
    assert sorted(per_seed["seed"].unique()) == [1, 2]
    emt_seeds = per_seed[
        (per_seed["model"] == "teacher")
        & (per_seed["metric"] == "expected_max_toxicity")
        & (per_seed["promptset"] == "rtp")
    ]
    assert emt_seeds["value"].tolist() == pytest.approx([0.5, 0.6])
    assert per_seed[per_seed["metric"] == "perplexity"].groupby("seed").size().tolist() == [3, 3]


def test_retrained_seeds_count_each_eval_file(files: dict, tmp_path: Path) -> None:
    for model, shift in MODELS:
        files["score_files"].update(_write_scores(tmp_path, 2, model, shift))
        files["eval_files"][(2, model)] = _write_eval(
            tmp_path / f"s2-{model}.json", model, 22.0 + 10 * shift
        )
    table = aggregate_metrics(**files)
    ppl = _row(table, "teacher", "perplexity")
    assert ppl["value"] == pytest.approx(21.0) and ppl["n_seeds"] == 2
    assert ppl["seed_sd"] == pytest.approx(np.std([20.0, 22.0], ddof=1))


def _quality(distinct_2: float, empty: float = 0.0) -> dict:
    return {
        "distinct_1": 0.5,
        "distinct_2": distinct_2,
        "distinct_3": 0.9,
        "empty_share": empty,
        "teacher_perplexity": 40.0,
        "n_continuations": 8,
        "gender_polarity_male_share": 0.25,
        "gender_polarity_female_share": 0.125,
    }


def test_quality_rows_and_flags(files: dict, tmp_path: Path) -> None:
    for model, _ in MODELS:
        for promptset in ("rtp", "bold"):
            path = tmp_path / f"q-{model}-{promptset}.json"
            degenerate = model == "pruned-0.50" and promptset == "bold"
            write_json(path, _quality(0.05 if degenerate else 0.7))
            files["quality_files"][(1, model, promptset)] = path
    table = aggregate_metrics(**files)
    assert table.loc[table["model"] == "pruned-0.50", "flagged"].all()  # every row of the model
    assert not table.loc[table["model"] != "pruned-0.50", "flagged"].any()
    assert _value(table, "teacher", "distinct_2", "rtp") == pytest.approx(0.7)
    assert _value(table, "pruned-0.50", "distinct_2", "bold") == pytest.approx(0.05)
    assert _value(table, "student", "teacher_perplexity", "bold") == pytest.approx(40.0)
    assert _value(table, "student", "gender_polarity_male_share", "bold") == 0.25
    assert _value(table, "student", "gender_polarity_female_share", "rtp") == 0.125
    quality = table[table["metric"].isin(["distinct_1", "distinct_3", "empty_share"])]
    assert len(quality) == 3 * 2 * 3 and quality["ci_low"].isna().all()
    text = files["out_csv"].read_text()
    assert ",True\n" in text and ",False\n" in text


def test_intrinsic_rows_pass_through(files: dict, tmp_path: Path) -> None:
    path = tmp_path / "intrinsic-teacher.csv"
    path.write_text(
        "promptset,group,metric,value,ci_low,ci_high\n"
        "crows_pairs,,stereotype_score,0.6,0.55,0.65\n"
        "crows_pairs,gender,stereotype_score,0.7,,\n"
    )
    files["intrinsic_files"][(1, "teacher")] = path
    table = aggregate_metrics(**files)
    row = _row(table, "teacher", "stereotype_score", "crows_pairs")
    assert (row["value"], row["ci_low"], row["ci_high"]) == (0.6, 0.55, 0.65)
    row = _row(table, "teacher", "stereotype_score", "crows_pairs", "gender")
    assert row["value"] == 0.7 and math.isnan(row["ci_low"])
    path.write_text("promptset,group,metric,value,ci_low,ci_high\nc,,m,x,,\n")
    with pytest.raises(InputError, match="line 2: value"):
        aggregate_metrics(**files)


def test_model_info_overrides_the_name(files: dict) -> None:
    files["model_info"]["student"] = ("pruning", 0.25)  # whatever the config says wins
    table = aggregate_metrics(**files)
    assert table.loc[table["model"] == "student", "level"].eq(0.25).all()
    assert list(dict.fromkeys(table["model"])) == ["teacher", "student", "pruned-0.50"]


def test_missing_prompt_rows_are_an_error(files: dict) -> None:
    path = files["score_files"][(1, "teacher", "rtp")]
    write_csv(path, _scores([("r1", 0, 0.1, 0.0)]))
    with pytest.raises(InputError, match="r2") as err:
        aggregate_metrics(**files)
    assert str(path) in str(err.value)
    assert not files["out_csv"].exists()
    assert not files["out_per_seed_csv"].exists()


def test_unknown_prompt_id_is_an_error(files: dict) -> None:
    path = files["score_files"][(1, "student", "bold")]
    write_csv(
        path,
        _scores(
            [
                ("b1", 0, 0.1, 0.0),
                ("b2", 0, 0.1, 0.0),
                ("b3", 0, 0.1, 0.0),
                ("b4", 0, 0.1, 0.0),
                ("zz", 0, 0.1, 0.0),
            ]
        ),
    )
    with pytest.raises(InputError, match="zz") as err:
        aggregate_metrics(**files)
    assert "bold.jsonl" in str(err.value)


def test_non_numeric_score_is_an_error(files: dict) -> None:
    path = files["score_files"][(1, "teacher", "rtp")]
    path.write_text("prompt_id,sample,toxicity,sentiment\nr1,0,0.1,0\nr2,0,,0\n")
    with pytest.raises(InputError, match="line 3"):
        aggregate_metrics(**files)


def test_bad_quality_and_bootstrap_settings_are_errors(files: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="bootstrap.resamples"):
        aggregate_metrics(**{**files, "bootstrap": {"resamples": 10}})
    with pytest.raises(InputError, match="quality_thresholds.min_distinct2"):
        aggregate_metrics(**{**files, "quality_thresholds": {"min_distinct2": 0.2}})
    path = tmp_path / "q.json"
    write_json(path, {"distinct_1": 0.5})
    files["quality_files"][(1, "teacher", "rtp")] = path
    with pytest.raises(InputError, match="distinct_2"):
        aggregate_metrics(**files)


def test_regard_rows_per_group_when_scored(files: dict) -> None:
    """Regard columns in the scores give per-group regard means and a per-domain gap."""
    regard_negative = {"b1": 0.8, "b2": 0.2, "b3": 0.5, "b4": 0.1}
    for (_seed, _model, promptset), path in files["score_files"].items():
        if promptset != "bold":
            continue
        frame = pd.read_csv(path)
        frame["regard_negative"] = frame["prompt_id"].map(regard_negative)
        frame["regard_positive"] = 1 - frame["regard_negative"]
        frame["regard_neutral"] = 0.0
        frame["regard_other"] = 0.0
        write_csv(path, frame)
    table = aggregate_metrics(**files)
    groups = {p["prompt_id"]: p["group"] for p in BOLD_PROMPTS}
    for prompt_id, value in regard_negative.items():
        assert _value(table, "teacher", "regard_negative", "bold", groups[prompt_id]) == pytest.approx(value)
        assert _value(table, "teacher", "regard_positive", "bold", groups[prompt_id]) == pytest.approx(1 - value)
    gender = {p["domain"] for p in BOLD_PROMPTS if p["prompt_id"] in ("b1", "b2")}.pop()
    assert _value(table, "teacher", "regard_negative_gap", "bold", gender) == pytest.approx(0.6)


def test_no_regard_rows_without_regard_scores(files: dict) -> None:
    table = aggregate_metrics(**files)
    assert not table["metric"].str.startswith("regard").any()
