"""Outputs are final or absent; readers name the file and line."""

import gzip
from pathlib import Path

import pytest

from compfair.io import (
    InputError,
    atomic_dir,
    atomic_path,
    concatenate_shards,
    jsonl_records,
    read_jsonl,
    write_jsonl,
)


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_suffix_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "fig.png"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp != target
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_atomic_dir_replaces_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(OSError), atomic_dir(target) as tmp:
        (tmp / "a").write_text("new")
        raise OSError(28, "No space left on device")
    assert (target / "a").read_text() == "old"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("new")
    assert (target / "a").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_read_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt_id": "a", "text": "x"}\n\n{"prompt_id": "b"\n')
    with pytest.raises(InputError, match=r"p\.jsonl, line 3: invalid JSON"):
        read_jsonl(path)
    path.write_text('{"prompt_id": "a", "text": "x"}\n{"prompt_id": "b"}\n')
    with pytest.raises(InputError, match=r"p\.jsonl, line 2: missing key\(s\) text"):
        read_jsonl(path, required=("prompt_id", "text"))


def test_jsonl_records_reads_gzip_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write('{"a": 1}\n\n{"a": 2}\n')
    assert jsonl_records(path) == [(1, {"a": 1}), (3, {"a": 2})]


def test_jsonl_records_names_bad_encoding_and_truncated_archive(tmp_path: Path) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"a": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.jsonl: not valid UTF-8"):
        jsonl_records(latin)
    whole = gzip.compress(b'{"a": 1}\n' * 1000)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.jsonl\.gz: cannot read file"):
        jsonl_records(cut)


def test_concatenate_shards_in_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "s0.jsonl", [{"i": 0}, {"i": 1}])
    write_jsonl(tmp_path / "s1.jsonl", [{"i": 2}])
    assert (
        concatenate_shards([tmp_path / "s0.jsonl", tmp_path / "s1.jsonl"], tmp_path / "all.jsonl")
        == 3
    )
    assert [r["i"] for r in read_jsonl(tmp_path / "all.jsonl")] == [0, 1, 2]
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,y\n3,4\n5,6\n")
    assert concatenate_shards([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "all.csv") == 3
    assert (tmp_path / "all.csv").read_text() == "x,y\n1,2\n3,4\n5,6\n"
    (tmp_path / "c.csv").write_text("x,z\n1,2\n")
    with pytest.raises(InputError, match="c.csv, line 1: header differs"):
        concatenate_shards([tmp_path / "a.csv", tmp_path / "c.csv"], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_temporaries_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".out.csv.abc123.csv").write_text("half")  # a dead atomic_path writer
    (tmp_path / ".model.tmp-xyz").mkdir()  # a dead atomic_dir writer
    (tmp_path / ".other.csv.abc.csv").write_text("not ours")
    with atomic_path(tmp_path / "out.csv") as tmp:
        tmp.write_text("ok")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "a").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.csv.abc.csv", "model", "out.csv"]
