"""Tests for compfair.audit: group phrases, masking, and the scorer audit on neutral sentences."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compfair.audit import (
    AUDIT_COLUMNS,
    SPREAD_COLUMNS,
    audit_scorer,
    audit_table,
    fill_template,
    prompt_groups,
    read_templates,
)
from compfair.data import read_bias_csv
from compfair.group_terms import group_forms, indefinite_article, mask_group_terms
from compfair.io import InputError, write_jsonl
from compfair.scoring import SCORERS, ToxicityScorer, register_scorer

REPO = Path(__file__).resolve().parents[2]

#: Three templates: two singular, one plural (the fake scorer gives plural sentences 0.2).
TEMPLATES = [
    "I am {noun_phrase}.",
    "{Plural_noun_phrase} live here.",
    "My neighbour is {noun_phrase}.",
]


@pytest.fixture
def gay_detector(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register ``gay_detector``: 1.0 if the text says "gay", 0.2 if "people", else 0.0."""
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    @register_scorer("gay_detector")
    class GayDetector(ToxicityScorer):
        def score(self, texts: list[str]) -> np.ndarray:
            lower = [t.lower() for t in texts]
            return np.array([1.0 if "gay" in t else 0.2 if "people" in t else 0.0 for t in lower])

    return "gay_detector"


# --------------------------------------------------------------------------- phrases


@pytest.mark.parametrize(
    ("group", "noun_phrase", "plural", "descriptor"),
    [
        ("gay", "a gay person", "gay people", "gay"),
        ("asian", "an asian person", "asian people", "asian"),
        ("men", "a man", "men", None),
        ("women", "a woman", "women", None),
        ("nurses", "a nurse", "nurses", None),
        ("engineers", "an engineer", "engineers", None),
        ("African_Americans", "an African American", "African Americans", None),
        (
            "Hispanic_and_Latino_Americans",
            "a Hispanic and Latino American",
            "Hispanic and Latino Americans",
            None,
        ),
        ("left-wing", "a left-wing person", "left-wing people", "left-wing"),
        ("nursing_specialties", "a nursing specialty", "nursing specialties", None),
    ],
)
def test_group_forms(group: str, noun_phrase: str, plural: str, descriptor: str | None) -> None:
    forms = group_forms(group)
    assert (forms.noun_phrase, forms.plural, forms.descriptor) == (noun_phrase, plural, descriptor)


def test_indefinite_article_and_empty_group() -> None:
    assert [indefinite_article(w) for w in ("engineer", "nurse", "European", "Uniformed")] == [
        "an",
        "a",
        "a",
        "a",
    ]
    with pytest.raises(InputError, match="empty group name"):
        group_forms(" _ ")


def test_fill_template_capitalises_at_sentence_start() -> None:
    assert fill_template(TEMPLATES[1], "gay") == "Gay people live here."
    assert fill_template(TEMPLATES[0], "engineers") == "I am an engineer."
    assert fill_template("{Noun_phrase} waved.", "asian") == "An asian person waved."


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("text", "group", "masked"),
    [
        ("Gay people live here. A gay person, gay men.", "gay", "People live here. A person, men."),
        ("I am gay.", "gay", "I am person."),
        (
            "The nurses met a nurse's friend; NURSES",
            "nurses",
            "The people met a person's friend; people",
        ),
        ("Men and women. A man.", "men", "People and women. A person."),
        (
            "She met African Americans and an African_American.",
            "African_Americans",
            "She met people and an person.",
        ),
        ("Black women and a black man.", "black", "women and a man."),
        (
            "Socialist in style and socialist with a hat.",
            "socialist",
            "Person in style and person with a hat.",
        ),
        ("Nothing to see.", "gay", "Nothing to see."),
    ],
)
def test_mask_group_terms(text: str, group: str, masked: str) -> None:
    assert mask_group_terms(text, group) == masked


def test_mask_several_groups_and_whole_words() -> None:
    text = "The women and the men, a woman, gaiety."
    assert (
        mask_group_terms(text, ["men", "women"]) == "The people and the people, a person, gaiety."
    )
    assert mask_group_terms("gayest", "gay") == "gayest"


# --------------------------------------------------------------------------- templates


def test_packaged_templates_fill_for_every_bias_group() -> None:
    templates = read_templates()
    assert len(templates) >= 10
    groups = {r["group"] for r in read_bias_csv(REPO / "data" / "bias_prompts.csv")}
    for group in groups:
        for template in templates:
            sentence = fill_template(template, group)
            assert "{" not in sentence and "}" not in sentence
            forms = group_forms(group)
            assert forms.singular in sentence.lower() or forms.plural in sentence.lower()


def test_read_templates_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("# comment\n\nI am {noun_phrase}.\nHello {name}.\n")
    with pytest.raises(InputError, match=r"t.txt, line 4: .*unknown: name"):
        read_templates(path)
    path.write_text("No placeholder here.\n")
    with pytest.raises(InputError, match="line 1: a template needs a placeholder"):
        read_templates(path)
    path.write_text("# only a comment\n")
    with pytest.raises(InputError, match="no templates"):
        read_templates(path)


# --------------------------------------------------------------------------- the audit


def test_audit_table_hand_computed(gay_detector: str) -> None:
    groups = [("height", "tall"), ("orientation", "gay"), ("orientation", "straight")]
    table, spread, sentences = audit_table(groups, gay_detector, threshold=0.5, templates=TEMPLATES)
    assert list(table.columns) == list(AUDIT_COLUMNS)
    assert list(spread.columns) == list(SPREAD_COLUMNS)
    assert len(sentences) == 9 and sentences["text"][3] == "I am a gay person."
    rows = table.set_index("group")
    # gay: every sentence says "gay" -> 1, 1, 1
    assert rows.loc["gay", ["n_templates", "mean", "sd", "share_toxic"]].tolist() == [
        3,
        1.0,
        0.0,
        1.0,
    ]
    # straight and tall: 0, 0.2 (plural sentence: "people"), 0 -> mean 1/15, sd = 0.2/sqrt(3)
    for group in ("straight", "tall"):
        assert rows.loc[group, "mean"] == pytest.approx(0.2 / 3)
        assert rows.loc[group, "sd"] == pytest.approx(0.2 / math.sqrt(3))
        assert rows.loc[group, "share_toxic"] == 0.0
    assert rows.loc["gay", "domain_spread"] == pytest.approx(1 - 0.2 / 3)
    assert rows.loc["tall", "domain_spread"] == 0.0
    by_domain = spread.set_index("domain")
    assert by_domain.loc["orientation", ["n_groups", "highest_group", "lowest_group"]].tolist() == [
        2,
        "gay",
        "straight",
    ]
    assert by_domain.loc["orientation", "spread"] == pytest.approx(1 - 0.2 / 3)
    # a lower threshold counts the 0.2 sentences as toxic
    table, _, _ = audit_table(groups, gay_detector, threshold=0.2, templates=TEMPLATES)
    assert table.set_index("group").loc["tall", "share_toxic"] == pytest.approx(1 / 3)


def test_audit_table_errors(gay_detector: str) -> None:
    with pytest.raises(InputError, match="no groups"):
        audit_table([], gay_detector)
    with pytest.raises(InputError, match="threshold"):
        audit_table([("d", "g")], gay_detector, threshold=0.0)
    with pytest.raises(InputError, match="unknown toxicity scorer"):
        audit_table([("d", "g")], "nope")


def _bias_prompts(path: Path) -> Path:
    rows = [
        {
            "prompt_id": "a1",
            "text": "x",
            "domain": "orientation",
            "group": "gay",
            "source_scores": {},
        },
        {
            "prompt_id": "a2",
            "text": "y",
            "domain": "orientation",
            "group": "gay",
            "source_scores": {},
        },
        {"prompt_id": "b1", "text": "z", "domain": "height", "group": "tall", "source_scores": {}},
        {"prompt_id": "r1", "text": "w", "domain": None, "group": None, "source_scores": {}},
    ]
    write_jsonl(path, rows)
    return path


def test_audit_scorer_writes_the_tables(tmp_path: Path, gay_detector: str) -> None:
    prompts = _bias_prompts(tmp_path / "bold.jsonl")
    assert prompt_groups(prompts) == [("height", "tall"), ("orientation", "gay")]
    templates = tmp_path / "templates.txt"
    templates.write_text("\n".join(TEMPLATES) + "\n")
    out = tmp_path / "tables" / "scorer_audit.csv"
    table = audit_scorer(
        prompts,
        out,
        gay_detector,
        threshold=0.5,
        spread_csv=tmp_path / "spread.csv",
        sentences_csv=tmp_path / "sentences.csv",
        templates_path=templates,
    )
    assert out.read_text().splitlines()[0] == ",".join(AUDIT_COLUMNS)
    pd.testing.assert_frame_equal(pd.read_csv(out), table, check_dtype=False)
    spread = pd.read_csv(tmp_path / "spread.csv")
    assert spread["spread"].tolist() == [0.0, 0.0]  # one group per domain
    sentences = pd.read_csv(tmp_path / "sentences.csv")
    assert sentences["score"].tolist() == [0.0, 0.2, 0.0, 1.0, 1.0, 1.0]


def test_audit_needs_grouped_prompts(tmp_path: Path, gay_detector: str) -> None:
    path = tmp_path / "rtp.jsonl"
    write_jsonl(path, [{"prompt_id": "r1", "text": "w", "domain": None, "group": None}])
    with pytest.raises(InputError, match="no prompt has a domain and a group"):
        audit_scorer(path, tmp_path / "a.csv", gay_detector)
    assert not (tmp_path / "a.csv").exists()


# --------------------------------------------------------------------------- real scorers


def _group_means(scorer: str) -> pd.Series:
    groups = [("orientation", "gay"), ("height", "tall"), ("race_ethnicity", "hispanic")]
    table, _, _ = audit_table(groups, scorer)
    return table.set_index("group")["mean"]


def test_profanity_check_reacts_to_the_word_gay() -> None:
    """The known confound: neutral sentences naming gay people score above those naming tall people."""
    means = _group_means("profanity_check")
    assert means["gay"] > means["tall"]
    assert means["gay"] > means["hispanic"]


@pytest.mark.skipif(
    importlib.util.find_spec("toxic_classifier") is None
    or importlib.util.find_spec("h5py") is None,
    reason="jigsaw_bilstm needs toxic-comment-classifier and h5py",
)
def test_jigsaw_bilstm_reacts_to_the_word_gay_too() -> None:
    means = _group_means("jigsaw_bilstm")
    assert means["gay"] > means["tall"]
