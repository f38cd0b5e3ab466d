"""Tests for compfair.quality: the guards against degenerate continuations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from compfair.io import InputError, write_json, write_jsonl
from compfair.quality import (
    GUARDS,
    GuardInput,
    GuardResult,
    Units,
    check_guards,
    distinct_n,
    distinct_n_per_prompt,
    empty_share,
    gender_counts,
    gender_polarity,
    gender_words,
    prompt_units,
    promptset_quality,
    quality_report,
    teacher_scored_rows,
)
from compfair.tables.files import read_quality, read_quality_units
from tests.support import continuation_nll_by_hand


def test_distinct_n_by_hand() -> None:
    """DExperts' dist-n: distinct n-grams over the number of words."""
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 4)  # ab, ba (ab again)
    assert distinct_n(["a b a b"], 3) == pytest.approx(2 / 4)  # aba, bab
    assert distinct_n(["the cat sat", "the cat ran"], 2) == pytest.approx(3 / 6)
    assert distinct_n(["the cat sat", "the cat ran"], 1) == pytest.approx(4 / 6)
    # case kept, whitespace words, n-grams do not cross texts
    assert distinct_n(["A b", "a  B"], 1) == pytest.approx(4 / 4)
    assert distinct_n(["a b", "c"], 2) == pytest.approx(1 / 3)  # no "b c"
    assert distinct_n(["x x x x x"], 1) == pytest.approx(1 / 5)
    assert distinct_n(["", "one"], 2) == 0.0  # one word, no bigram
    assert distinct_n([""], 1) == 0.0  # no words at all
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
    nll, count = continuation_nll_by_hand(model_dir, rows)
    return math.exp(nll / count), count


def test_distinct_n_per_prompt_averages_over_prompts() -> None:
    rows = [
        {"prompt_id": "a", "continuation": "x y"},
        {"prompt_id": "a", "continuation": "x y"},  # a: unigrams x y of 4 words -> 2/4
        {"prompt_id": "b", "continuation": "u v w"},  # b: 3/3
        {"prompt_id": "c", "continuation": ""},  # c: no word at all -> 0
    ]
    assert distinct_n_per_prompt(rows, 1) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # pooled over all continuations it would be 5/7: the per-prompt protocol differs
    assert distinct_n([r["continuation"] for r in rows], 1) == pytest.approx(5 / 7)
    units = prompt_units(rows)
    assert units["prompt_id"] == ["a", "b", "c"]
    assert units["distinct_1"] == pytest.approx([0.5, 1.0, 0.0])
    assert units["distinct_2"] == pytest.approx([1 / 4, 2 / 3, 0.0])
    assert units["mean_words"] == pytest.approx([2.0, 3.0, 0.0])
    assert units["empty_share"] == pytest.approx([0.0, 0.0, 1.0])


QUALITY_KEYS = {
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "mean_words",
    "empty_share",
    "teacher_perplexity",
    "teacher_input",
    "n_continuations",
    "n_scored_tokens",
    "gender_polarity_male_share",
    "gender_polarity_female_share",
    "units",
}


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
    assert set(block) == QUALITY_KEYS
    assert block["teacher_input"] == "text"  # no token ids in these rows
    assert block["n_continuations"] == 5
    assert block["empty_share"] == pytest.approx(0.4)
    assert block["distinct_2"] == pytest.approx(distinct_n_per_prompt(GENERATIONS, 2))
    # words per continuation: p1 (3 + 0) / 2, p2 0, p3 2, p4 2
    assert block["mean_words"] == pytest.approx((1.5 + 0 + 2 + 2) / 4)
    expected, n_tokens = _ppl_by_hand(tiny_gpt2_dir, GENERATIONS)
    assert block["teacher_perplexity"] == pytest.approx(expected, rel=1e-4)
    assert block["n_scored_tokens"] == n_tokens
    assert block["gender_polarity_male_share"] == 0.0  # "He said" is a prompt, not text
    units = block["units"]
    assert units["prompt_id"] == ["p1", "p2", "p3", "p4"]
    assert units["teacher_tokens"] == [4, 0, 2, 2]  # p2 was scored: its one sample is blank
    assert math.exp(sum(units["teacher_nll"]) / n_tokens) == pytest.approx(expected, rel=1e-4)
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


# --------------------------------------------------------------------------- guards, point values

THRESHOLDS = {"max_teacher_perplexity": 1000.0, "min_distinct_2": 0.2, "max_empty_share": 0.5}
GOOD = {"distinct_2": 0.6, "empty_share": 0.1, "teacher_perplexity": 50.0}


def _broken(results: list[GuardResult]) -> list[str]:
    return [r.describe() for r in results if r.broken]


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
    assert bool(_broken(check_guards(THRESHOLDS, GuardInput({**GOOD, **change})))) is flagged


RELATIVE = {
    "max_perplexity_ratio": 2.0,
    "max_teacher_perplexity_ratio": 2.0,
    "max_distinct_2_drop": 0.25,
    "max_length_drop": 0.25,
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
        ({"mean_words": 6.0}, {"mean_words": 12.0}, ["mean_words 50.0% below the parent's > 25%"]),
        (
            {"perplexity": 50.0},
            {"perplexity": float("nan")},
            ["perplexity relative to the parent is undefined (possible, cannot be checked)"],
        ),
    ],
)
def test_guards_relative_to_the_parent(mine: dict, parent: dict, reasons: list[str]) -> None:
    found = _broken(check_guards(RELATIVE, GuardInput(mine), GuardInput(parent)))
    # no units: the point estimate alone, never "clear"
    assert [r.removesuffix(" (possible, no interval)") for r in found] == reasons
    assert _broken(check_guards(RELATIVE, GuardInput(mine))) == []  # no parent: none apply


def test_guard_thresholds() -> None:
    bad = GuardInput({**GOOD, "distinct_2": 0.1, "empty_share": 0.9})
    assert _broken(check_guards(THRESHOLDS, bad)) == [
        "empty_share 0.9 > 0.5 (possible, no interval)",
        "distinct_2 0.1 < 0.2 (possible, no interval)",
    ]
    assert check_guards({}, bad) == []  # no thresholds, no guards
    off = {**THRESHOLDS, "min_distinct_2": None, "max_empty_share": None}
    assert _broken(check_guards(off, bad)) == []
    with pytest.raises(InputError, match="max_distinct_9"):
        check_guards({"max_distinct_9": 1.0}, bad)


# --------------------------------------------------------------------------- clear or possible


def _result(key: str, value: float, low: float, high: float, limit: float) -> GuardResult:
    return GuardResult(key, GUARDS[key], value, low, high, limit, confidence=0.95)


@pytest.mark.parametrize(
    "result, broken, clear, text",
    [
        (
            _result("max_teacher_perplexity_ratio", 2.25, 2.1, 2.4, 2.0),
            True,
            True,
            "teacher_perplexity 2.25 x the parent's > 2 (clear, 95% CI 2.1 to 2.4)",
        ),
        (
            _result("max_teacher_perplexity_ratio", 2.25, 1.8, 2.6, 2.0),
            True,
            False,
            "teacher_perplexity 2.25 x the parent's > 2 (possible, 95% CI 1.8 to 2.6)",
        ),
        (_result("max_teacher_perplexity_ratio", 1.5, 1.2, 2.6, 2.0), False, False, None),
        (
            _result("max_distinct_2_drop", 0.4, 0.3, 0.5, 0.25),
            True,
            True,
            "distinct_2 40.0% below the parent's > 25% (clear, 95% CI 30.0% to 50.0%)",
        ),
        (
            _result("max_length_drop", 0.5, 0.2, 0.7, 0.25),
            True,
            False,
            "mean_words 50.0% below the parent's > 25% (possible, 95% CI 20.0% to 70.0%)",
        ),
        # a lower limit: clear when even the upper end is below it
        (_result("min_distinct_2", 0.1, 0.05, 0.15, 0.2), True, True, None),
        (_result("min_distinct_2", 0.1, 0.05, 0.25, 0.2), True, False, None),
        (_result("max_empty_share", 0.3, 0.1, 0.6, 0.05), True, True, None),
        (_result("max_empty_share", 0.3, math.nan, math.nan, 0.05), True, False, None),
        (_result("max_empty_share", math.nan, math.nan, math.nan, 0.05), True, False, None),
    ],
)
def test_clear_or_possible_on_hand_made_numbers(
    result: GuardResult, broken: bool, clear: bool, text: str | None
) -> None:
    assert (result.broken, result.clear) == (broken, clear)
    if text is not None:
        assert result.describe() == text


NLL_A = [2.0, 4.0, 3.0, 5.0, 1.0, 6.0, 2.5, 3.5, 4.5, 2.0, 3.0, 5.5]
NLL_B = [1.0, 2.0, 1.5, 2.0, 0.5, 3.0, 1.0, 2.0, 2.0, 1.0, 1.5, 2.5]
TOKENS = [2, 3, 2, 4, 1, 4, 2, 3, 3, 2, 2, 4]


def test_teacher_perplexity_ratio_is_paired_over_prompts() -> None:
    ids = tuple(f"p{i:02d}" for i in range(12))
    mine = Units(ids, np.array(NLL_A), np.array(TOKENS, dtype=float))
    # the parent's units in another order, with a prompt the model lacks: pairing goes by id
    parent = Units(
        (*ids[::-1], "extra"), np.array([*NLL_B[::-1], 9.0]), np.array([*TOKENS[::-1], 1.0])
    )
    ppl = lambda nll, tok: math.exp(sum(nll) / sum(tok))  # noqa: E731
    expected = ppl(NLL_A, TOKENS) / ppl(NLL_B, TOKENS)  # exp((41.5 - 20) / 32) = 1.958...
    values = {"teacher_perplexity": ppl(NLL_A, TOKENS)}
    boot = {"n_resamples": 400, "confidence": 0.95, "seed": 3}
    result = check_guards(
        {"max_teacher_perplexity_ratio": 1.5},
        GuardInput(values, {"teacher_perplexity": mine}),
        GuardInput({"teacher_perplexity": 1.0}, {"teacher_perplexity": parent}),
        lambda key: boot,
    )[0]
    assert result.value == pytest.approx(expected)
    assert result.low < expected < result.high
    assert result.broken and result.clear  # every prompt's NLL doubled or so: well past 1.5
    again = check_guards(
        {"max_teacher_perplexity_ratio": 1.5},
        GuardInput(values, {"teacher_perplexity": mine}),
        GuardInput({"teacher_perplexity": 1.0}, {"teacher_perplexity": parent}),
        lambda key: boot,
    )[0]
    assert (again.low, again.high) == (result.low, result.high)  # seeded: the same interval
    possible = check_guards(
        {"max_teacher_perplexity_ratio": 1.9},
        GuardInput(values, {"teacher_perplexity": mine}),
        GuardInput({"teacher_perplexity": 1.0}, {"teacher_perplexity": parent}),
        lambda key: boot,
    )[0]
    assert possible.broken and possible.low < 1.9 and not possible.clear


# --------------------------------------------------------------------------- simulated models

WORDS = [f"w{i}" for i in range(400)]


def _parent_rows(n_prompts: int = 20, samples: int = 5, words: int = 12) -> list[dict]:
    """Continuations of ``words`` distinct words each, a different stretch for every sample."""
    rows = []
    for p in range(n_prompts):
        for k in range(samples):
            start = (p * samples + k) * 7 % (len(WORDS) - words)
            text = " " + " ".join(WORDS[start : start + words])
            rows.append({"prompt_id": f"p{p:02d}", "sample": k, "continuation": text})
    return rows


def _guard_input(rows: list[dict], tmp_path: Path, name: str) -> GuardInput:
    """What the aggregation reads back from a quality file of these rows (no teacher scores)."""
    path = tmp_path / f"{name}.json"
    write_json(path, {"promptsets": {"rtp": promptset_quality(rows, [], [], "text")}})
    return GuardInput(read_quality(path)["rtp"], read_quality_units(path)["rtp"])


def test_a_model_writing_half_as_many_words_trips_the_length_guard(tmp_path: Path) -> None:
    parent_rows = _parent_rows()
    half = [{**r, "continuation": " ".join(r["continuation"].split()[:6])} for r in parent_rows]
    parent = _guard_input(parent_rows, tmp_path, "parent")
    mine = _guard_input(half, tmp_path, "half")
    assert parent.values["mean_words"] == 12.0 and mine.values["mean_words"] == 6.0
    thresholds = {"max_distinct_2_drop": 0.25, "max_length_drop": 0.25}
    boot = {"n_resamples": 300, "seed": 0}
    results = {r.key: r for r in check_guards(thresholds, mine, parent, lambda key: boot)}
    length = results["max_length_drop"]
    assert length.value == pytest.approx(0.5) and length.broken and length.clear
    # distinct-2 divides by the words: half as long barely moves it (11/12 -> 5/6 per sample)
    assert results["max_distinct_2_drop"].value < 0.25
    assert not results["max_distinct_2_drop"].broken


def test_a_repetitive_model_trips_the_distinct_guard(tmp_path: Path) -> None:
    parent_rows = _parent_rows()
    # the same length, but every continuation one word said twelve times
    repetitive = [
        {**r, "continuation": " " + " ".join([r["continuation"].split()[0]] * 12)}
        for r in parent_rows
    ]
    parent = _guard_input(parent_rows, tmp_path, "parent")
    mine = _guard_input(repetitive, tmp_path, "repetitive")
    thresholds = {"max_distinct_2_drop": 0.25, "max_length_drop": 0.25, "min_distinct_2": 0.2}
    boot = {"n_resamples": 300, "seed": 0}
    results = {r.key: r for r in check_guards(thresholds, mine, parent, lambda key: boot)}
    drop = results["max_distinct_2_drop"]
    assert drop.broken and drop.clear and drop.value > 0.8
    assert results["min_distinct_2"].broken
    assert not results["max_length_drop"].broken


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
