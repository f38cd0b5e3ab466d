"""Tests for compfair.aggregate: the tidy metrics table on small synthetic files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from compfair.aggregate import COLUMNS, aggregate_metrics, model_compression
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


@pytest.fixture()
def files(tmp_path: Path) -> dict:
    write_jsonl(tmp_path / "rtp.jsonl", RTP_PROMPTS)
    write_jsonl(tmp_path / "bold.jsonl", BOLD_PROMPTS)
    score_files = {}
    for model, shift in (("pruned-0.50", 0.2), ("teacher", 0.0), ("student", 0.1)):
        write_csv(
            tmp_path / f"{model}-rtp.csv",
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
            tmp_path / f"{model}-bold.csv",
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
        score_files[(model, "rtp")] = tmp_path / f"{model}-rtp.csv"
        score_files[(model, "bold")] = tmp_path / f"{model}-bold.csv"
        write_json(
            tmp_path / f"{model}.json",
            {
                "model": model,
                "perplexity": 20.0 + 10 * shift,
                "heldout_tokens": 100,
                "n_parameters": 1000,
                "n_prunable": 800,
                "sparsity": 0.5 if "pruned" in model else 0.0,
            },
        )
    return {
        "score_files": score_files,
        "prompt_files": {"rtp": tmp_path / "rtp.jsonl", "bold": tmp_path / "bold.jsonl"},
        "eval_files": {m: tmp_path / f"{m}.json" for m in ("student", "pruned-0.50", "teacher")},
        "out_csv": tmp_path / "tables" / "metrics.csv",
    }


def _value(
    table: pd.DataFrame, model: str, metric: str, promptset: str = "", group: str = ""
) -> float:
    t = table.fillna({"promptset": "", "group": ""})
    rows = t[
        (t["model"] == model)
        & (t["metric"] == metric)
        & (t["promptset"] == promptset)
        & (t["group"] == group)
    ]
    assert len(rows) == 1, (model, metric, promptset, group, rows)
    return float(rows["value"].iloc[0])


def test_aggregate_values(files: dict) -> None:
    table = aggregate_metrics(**files)
    assert list(table.columns) == COLUMNS
    on_disk = pd.read_csv(files["out_csv"])
    assert list(on_disk.columns) == COLUMNS
    assert len(on_disk) == len(table)
    # rtp, teacher: maxima 0.7 and 0.3
    assert _value(table, "teacher", "expected_max_toxicity", "rtp") == pytest.approx(0.5)
    assert _value(table, "teacher", "toxicity_probability", "rtp") == pytest.approx(0.5)
    assert _value(table, "teacher", "mean_toxicity", "rtp") == pytest.approx(1.3 / 4)
    # pruned: maxima 0.9 and 0.5 -> both >= 0.5
    assert _value(table, "pruned-0.50", "expected_max_toxicity", "rtp") == pytest.approx(0.7)
    assert _value(table, "pruned-0.50", "toxicity_probability", "rtp") == pytest.approx(1.0)
    # bold sentiment for the teacher
    assert _value(table, "teacher", "sentiment_mean", "bold", "men") == pytest.approx(0.0)
    assert _value(table, "teacher", "sentiment_positive_share", "bold", "men") == 0.5
    assert _value(table, "teacher", "sentiment_negative_share", "bold", "men") == 0.5
    assert _value(table, "teacher", "sentiment_mean", "bold", "women") == pytest.approx(0.6)
    assert _value(table, "teacher", "sentiment_negative_share", "bold", "women") == 0.0
    assert _value(table, "teacher", "sentiment_gap", "bold", "gender") == pytest.approx(0.6)
    assert _value(table, "teacher", "sentiment_gap", "bold", "race") == pytest.approx(0.3)
    assert _value(table, "student", "sentiment_gap", "bold", "race") == pytest.approx(0.25)
    # model-level rows
    assert _value(table, "student", "perplexity") == pytest.approx(21.0)
    assert _value(table, "pruned-0.50", "sparsity") == 0.5
    assert _value(table, "teacher", "n_parameters") == 1000


def test_aggregate_shape_and_order(files: dict) -> None:
    table = aggregate_metrics(**files)
    # one row per (model, promptset, group, metric)
    assert not table.duplicated(["model", "promptset", "group", "metric"]).any()
    per_model = 3 + 3 + 3 + 4 * 3 + 2  # eval + rtp + bold toxicity + 4 groups x 3 + 2 gaps
    assert table.groupby("model").size().to_dict() == {
        "teacher": per_model,
        "student": per_model,
        "pruned-0.50": per_model,
    }
    assert list(dict.fromkeys(table["model"])) == ["teacher", "student", "pruned-0.50"]
    assert table.loc[table["model"] == "pruned-0.50", "compression"].eq("pruning").all()
    assert table.loc[table["model"] == "pruned-0.50", "level"].eq(0.5).all()
    assert table.loc[table["model"] == "student", "compression"].eq("distillation").all()
    assert table.loc[table["model"] == "teacher", "level"].isna().all()
    # rtp has no groups: no sentiment rows for it
    assert not table[
        (table["promptset"] == "rtp") & table["metric"].str.startswith("sentiment")
    ].shape[0]
    # deterministic: input dict order does not matter
    shuffled = dict(reversed(list(files["score_files"].items())))
    again = aggregate_metrics(**{**files, "score_files": shuffled})
    pd.testing.assert_frame_equal(table, again)
    text = files["out_csv"].read_text().splitlines()
    assert text[0] == "model,compression,level,promptset,group,metric,value"
    assert text[1].startswith("teacher,none,,,,perplexity,")


def test_missing_prompt_rows_are_an_error(files: dict, tmp_path: Path) -> None:
    path = files["score_files"][("teacher", "rtp")]
    write_csv(path, _scores([("r1", 0, 0.1, 0.0)]))
    with pytest.raises(InputError, match="r2") as err:
        aggregate_metrics(**files)
    assert str(path) in str(err.value)
    assert not files["out_csv"].exists()


def test_unknown_prompt_id_is_an_error(files: dict) -> None:
    path = files["score_files"][("student", "bold")]
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
    path = files["score_files"][("teacher", "rtp")]
    path.write_text("prompt_id,sample,toxicity,sentiment\nr1,0,0.1,0\nr2,0,,0\n")
    with pytest.raises(InputError, match="line 3"):
        aggregate_metrics(**files)
