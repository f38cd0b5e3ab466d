"""Tests for compfair.quality: the guards against degenerate continuations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from compfair.io import InputError, write_jsonl
from compfair.quality import (
    degeneracy_reasons,
    distinct_n,
    distinct_n_per_prompt,
    empty_share,
    gender_counts,
    gender_polarity,
    gender_words,
    quality_report,
    teacher_scored_rows,
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


def test_distinct_n_per_prompt_averages_over_prompts() -> None:
    rows = [
        {"prompt_id": "a", "continuation": "x y"},
        {"prompt_id": "a", "continuation": "x y"},  # a: unigrams x y x y -> 2/4
        {"prompt_id": "b", "continuation": "u v w"},  # b: 3/3
        {"prompt_id": "c", "continuation": ""},  # c: no n-gram at all -> 0
    ]
    assert distinct_n_per_prompt(rows, 1) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # pooled over all continuations it would be 5/7: the per-prompt protocol differs
    assert distinct_n([r["continuation"] for r in rows], 1) == pytest.approx(5 / 7)


def test_quality_report_writes_contract(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, GENERATIONS)
    other = tmp_path / "other.jsonl"
    write_jsonl(other, GENERATIONS[:1])
    out = tmp_path / "quality" / "seed-1" / "kd-0.50.json"
    report = quality_report({"rtp": path, "bold": other}, tiny_gpt2_dir, out, batch_size=2)
    assert json.loads(out.read_text()) == report
    assert sorted(report["promptsets"]) == ["bold", "rtp"]
    block = report["promptsets"]["rtp"]
    assert set(block) == {
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
    assert block["n_continuations"] == 5
    assert block["empty_share"] == pytest.approx(0.4)
    assert block["distinct_2"] == pytest.approx(distinct_n_per_prompt(GENERATIONS, 2))
    expected, n_tokens = _ppl_by_hand(tiny_gpt2_dir, GENERATIONS)
    assert block["teacher_perplexity"] == pytest.approx(expected, rel=1e-4)
    assert block["n_scored_tokens"] == n_tokens
    assert block["gender_polarity_male_share"] == 0.0  # "He said" is a prompt, not text
    assert report["promptsets"]["bold"]["n_continuations"] == 1
    only_empty = tmp_path / "empty.jsonl"
    write_jsonl(only_empty, [GENERATIONS[1], GENERATIONS[2]])
    report = quality_report({"rtp": only_empty}, tiny_gpt2_dir, tmp_path / "e.json")
    assert report["promptsets"]["rtp"]["teacher_perplexity"] is None


def test_quality_report_rejects_bad_input(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    path.write_text("")
    with pytest.raises(InputError, match="no generations"):
        quality_report({"rtp": path}, tiny_gpt2_dir, tmp_path / "q.json")
    write_jsonl(path, [{"prompt_id": "p", "prompt": "a", "continuation": 3}])
    with pytest.raises(InputError, match="row 1"):
        quality_report({"rtp": path}, tiny_gpt2_dir, tmp_path / "q.json")
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
def test_absolute_guards(change: dict, flagged: bool) -> None:
    assert bool(degeneracy_reasons({**GOOD, **change}, THRESHOLDS)) is flagged


RELATIVE = {
    "max_perplexity_ratio": 2.0,
    "max_teacher_perplexity_ratio": 2.0,
    "max_distinct_2_drop": 0.25,
}


@pytest.mark.parametrize(
    "mine, parent, reasons",
    [
        ({"perplexity": 714.0}, {"perplexity": 32.0}, ["perplexity 22.3 x the parent's > 2"]),
        ({"perplexity": 64.0}, {"perplexity": 32.0}, []),  # exactly twice: at the limit
        (
            {"teacher_perplexity": 90.0},
            {"teacher_perplexity": 40.0},
            ["teacher_perplexity 2.25 x the parent's > 2"],
        ),
        ({"distinct_2": 0.45}, {"distinct_2": 0.6}, []),  # 25 % below: at the limit
        ({"distinct_2": 0.3}, {"distinct_2": 0.6}, ["distinct_2 50.0% below the parent's > 25%"]),
        (
            {"perplexity": 50.0},
            {"perplexity": float("nan")},
            ["perplexity relative to the parent is undefined"],
        ),
    ],
)
def test_guards_relative_to_the_parent(mine: dict, parent: dict, reasons: list[str]) -> None:
    assert degeneracy_reasons(mine, RELATIVE, parent) == reasons
    assert degeneracy_reasons(mine, RELATIVE, None) == []  # no parent: only absolute guards


def test_degeneracy_thresholds() -> None:
    bad = {**GOOD, "distinct_2": 0.1, "empty_share": 0.9}
    assert degeneracy_reasons(bad, THRESHOLDS) == ["empty_share 0.9 > 0.5", "distinct_2 0.1 < 0.2"]
    assert degeneracy_reasons(bad, {}) == []  # no thresholds, no flags
    assert (
        degeneracy_reasons(bad, {**THRESHOLDS, "min_distinct_2": None, "max_empty_share": None})
        == []
    )
    with pytest.raises(InputError, match="max_distinct_9"):
        degeneracy_reasons(GOOD, {"max_distinct_9": 1.0})


def test_teacher_perplexity_scores_the_first_samples_only(
    tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    rows = [
        {"prompt_id": "p1", "sample": 0, "prompt": "The cat sat", "continuation": " on the mat."},
        {"prompt_id": "p1", "sample": 1, "prompt": "The cat sat", "continuation": " zebra quantum"},
    ]
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, rows)
    first = quality_report({"rtp": path}, tiny_gpt2_dir, tmp_path / "a.json", teacher_samples=1)
    every = quality_report({"rtp": path}, tiny_gpt2_dir, tmp_path / "b.json", teacher_samples=None)
    assert first["promptsets"]["rtp"]["teacher_perplexity"] == pytest.approx(
        _ppl_by_hand(tiny_gpt2_dir, rows[:1])[0], rel=1e-4
    )
    assert every["promptsets"]["rtp"]["teacher_perplexity"] == pytest.approx(
        _ppl_by_hand(tiny_gpt2_dir, rows)[0], rel=1e-4
    )
    assert (
        first["promptsets"]["rtp"]["distinct_1"] == every["promptsets"]["rtp"]["distinct_1"]
    )  # all samples


def test_the_teacher_scores_an_even_spread_of_prompts_the_same_for_every_model() -> None:
    rows = [{"prompt_id": f"p{i:02d}", "sample": k} for i in range(10) for k in range(3)]
    chosen = teacher_scored_rows(rows, samples=1, prompts=4)
    # sorted ids p00..p09, 4 evenly spread: positions 0, 3, 6, 9
    assert [(r["prompt_id"], r["sample"]) for r in chosen] == [
        ("p00", 0),
        ("p03", 0),
        ("p06", 0),
        ("p09", 0),
    ]
    # another model's file in another order: the same continuations
    assert sorted(map(str, teacher_scored_rows(rows[::-1], 1, 4))) == sorted(map(str, chosen))
    assert len(teacher_scored_rows(rows, samples=2, prompts=None)) == 20
    assert len(teacher_scored_rows(rows, samples=None, prompts=50)) == 30
