"""Tests for compfair.quality: the guards against degenerate continuations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from compfair.io import InputError, write_jsonl
from compfair.perplexity import continuation_perplexity
from compfair.quality import (
    degeneracy_reasons,
    distinct_n,
    empty_share,
    gender_counts,
    gender_polarity,
    gender_words,
    is_degenerate,
    quality_report,
)


def test_distinct_n_by_hand() -> None:
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert distinct_n(["a b a b"], 3) == pytest.approx(2 / 2)  # aba, bab
    # lower-cased, whitespace tokens, n-grams do not cross texts
    assert distinct_n(["A b", "a  B"], 2) == pytest.approx(1 / 2)
    assert distinct_n(["a b", "c"], 2) == pytest.approx(1.0)  # no "b c"
    assert distinct_n(["x x x x x"], 1) == pytest.approx(1 / 5)
    assert distinct_n(["", "one"], 2) == 0.0  # no bigrams at all
    assert distinct_n([], 1) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)


def test_empty_share() -> None:
    assert empty_share(["", "  \n", "text", "more text"]) == pytest.approx(0.5)
    assert empty_share(["a"]) == 0.0
    assert empty_share([]) == 0.0


def test_gender_word_lists() -> None:
    male, female = gender_words()
    assert 25 <= len(male) <= 35 and 25 <= len(female) <= 35
    assert {"he", "him", "his", "man", "men", "boy", "father"} <= male
    assert {"she", "her", "woman", "women", "girl", "mother"} <= female
    assert all(w == w.lower() and w.isalpha() for w in male | female)


def test_gender_polarity_by_hand() -> None:
    assert gender_counts("He told his mother.") == (2, 1)
    assert gender_counts("She's her father's daughter, HE said") == (2, 3)  # she's -> she
    assert gender_counts("Sheriff Hermann") == (0, 0)  # whole words only
    texts = [
        "He told his mother.",  # male 2 > female 1
        "The woman and her sister.",  # female
        "A man and a woman.",  # tie: neither
        "The weather is nice.",  # none
    ]
    assert gender_polarity(texts) == {
        "gender_polarity_male_share": pytest.approx(0.25),
        "gender_polarity_female_share": pytest.approx(0.25),
    }
    assert gender_polarity([]) == {
        "gender_polarity_male_share": 0.0,
        "gender_polarity_female_share": 0.0,
    }


GENERATIONS = [
    {"prompt_id": "p1", "sample": 0, "prompt": "The cat sat", "continuation": " on the mat."},
    {"prompt_id": "p1", "sample": 1, "prompt": "The cat sat", "continuation": ""},  # excluded
    {"prompt_id": "p2", "sample": 0, "prompt": "He said", "continuation": "  "},  # excluded
    {"prompt_id": "p3", "sample": 0, "prompt": "", "continuation": "Hello world"},  # BOS context
    {"prompt_id": "p4", "sample": 0, "prompt": "She went to", "continuation": " the market"},
]


def _ppl_by_hand(model_dir: Path, rows: list[dict]) -> tuple[float, int]:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    nll, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            if not row["continuation"].strip():
                continue
            head = tok(row["prompt"])["input_ids"] or [tok.bos_token_id]
            cont = tok(row["continuation"], add_special_tokens=False)["input_ids"]
            ids = torch.tensor([head + cont])
            logp = torch.log_softmax(model(ids).logits[0], dim=-1)
            for t in range(len(head), len(head) + len(cont)):
                nll -= float(logp[t - 1, ids[0, t]])
                count += 1
    return math.exp(nll / count), count


def test_continuation_perplexity_matches_hand_computation(
    tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, GENERATIONS)
    expected, _ = _ppl_by_hand(tiny_gpt2_dir, GENERATIONS)
    for batch_size in (1, 3):  # padding must not change the result
        got = continuation_perplexity(tiny_gpt2_dir, path, batch_size=batch_size)
        assert got == pytest.approx(expected, rel=1e-4)


def test_continuation_perplexity_of_only_empty_is_nan(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, [GENERATIONS[1], GENERATIONS[2]])
    assert math.isnan(continuation_perplexity(tiny_gpt2_dir, path))


def test_quality_report_writes_contract(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, GENERATIONS)
    out = tmp_path / "quality" / "seed-1" / "student" / "rtp.json"
    report = quality_report(path, tiny_gpt2_dir, out, batch_size=2)
    assert json.loads(out.read_text()) == report
    assert set(report) == {
        "distinct_1",
        "distinct_2",
        "distinct_3",
        "empty_share",
        "teacher_perplexity",
        "n_continuations",
        "n_scored_tokens",
        "gender_polarity_male_share",
        "gender_polarity_female_share",
    }
    texts = [r["continuation"] for r in GENERATIONS]
    assert report["n_continuations"] == 5
    assert report["empty_share"] == pytest.approx(0.4)
    assert report["distinct_2"] == pytest.approx(distinct_n(texts, 2))
    expected, n_tokens = _ppl_by_hand(tiny_gpt2_dir, GENERATIONS)
    assert report["teacher_perplexity"] == pytest.approx(expected, rel=1e-4)
    assert report["n_scored_tokens"] == n_tokens
    assert report["gender_polarity_male_share"] == 0.0  # "He said" is a prompt, not text


def test_quality_report_rejects_bad_input(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    path.write_text("")
    with pytest.raises(InputError, match="no generations"):
        quality_report(path, tiny_gpt2_dir, tmp_path / "q.json")
    write_jsonl(path, [{"prompt": "a", "continuation": 3}])
    with pytest.raises(InputError, match="row 1"):
        quality_report(path, tiny_gpt2_dir, tmp_path / "q.json")
    assert not (tmp_path / "q.json").exists()


THRESHOLDS = {"max_teacher_perplexity": 1000.0, "min_distinct_2": 0.2, "max_empty_share": 0.5}
GOOD = {"distinct_2": 0.6, "empty_share": 0.1, "teacher_perplexity": 50.0}


@pytest.mark.parametrize(
    "change, flagged",
    [
        ({}, False),
        ({"teacher_perplexity": 1000.0}, False),  # at the limit is still fine
        ({"teacher_perplexity": 1500.0}, True),
        ({"distinct_2": 0.1}, True),
        ({"empty_share": 0.9}, True),
        ({"teacher_perplexity": None}, True),  # cannot be checked
        ({"teacher_perplexity": float("nan")}, True),
    ],
)
def test_is_degenerate(change: dict, flagged: bool) -> None:
    assert is_degenerate({**GOOD, **change}, THRESHOLDS) is flagged


def test_degeneracy_thresholds() -> None:
    bad = {**GOOD, "distinct_2": 0.1, "empty_share": 0.9}
    assert degeneracy_reasons(bad, THRESHOLDS) == ["empty_share 0.9 > 0.5", "distinct_2 0.1 < 0.2"]
    assert not is_degenerate(bad, {})  # no thresholds, no flags
    assert not is_degenerate(bad, {**THRESHOLDS, "min_distinct_2": None, "max_empty_share": None})
    with pytest.raises(InputError, match="max_distinct_9"):
        is_degenerate(GOOD, {"max_distinct_9": 1.0})
    with pytest.raises(InputError, match="expected max_<metric>"):
        is_degenerate(GOOD, {"distinct_2": 1.0})
