"""compfair.layout: one pattern per result file, used by the rules, the tests and bench/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compfair.layout import PATTERNS, Layout, fill, shard_count, stored_path

REPO = Path(__file__).resolve().parents[2]


def test_fill_leaves_the_fields_it_is_not_given_as_wildcards() -> None:
    layout = Layout("smoke")
    assert layout.path("score_shard", seed=7, model="teacher") == (
        "results/smoke/scores/seed-7/teacher/{promptset}/shard-{shard}.csv"
    )
    assert fill("a/{x}/{y}.csv", y="{z}") == "a/{x}/{z}.csv"
    with pytest.raises(KeyError, match="no result file of kind 'score'"):
        layout.path("score")


def test_one_shard_is_the_file_and_several_are_gathered(tmp_path: Path) -> None:
    layout = Layout("s", tmp_path)
    where = {"seed": 7, "model": "teacher", "promptset": "rtp"}
    assert layout.generations(1, **where).endswith("generations/seed-7/teacher/rtp/shard-0.jsonl")
    assert layout.scores(3, **where).endswith("scores/seed-7/teacher/rtp.csv")
    prompts = Path(layout.path("prompts", promptset="rtp"))
    prompts.parent.mkdir(parents=True)
    prompts.write_text("{}\n" * 10 + "\n")  # 10 prompts and a blank line
    assert [layout.shards("rtp", size) for size in (4, 5, 10, 100)] == [3, 2, 1, 1]
    assert shard_count(prompts, 3) == 4


def test_finished_finds_the_gathered_file_or_the_only_shard(tmp_path: Path) -> None:
    layout = Layout("s", tmp_path)
    where = {"seed": 7, "model": "kd-0.50", "promptset": "bold"}
    with pytest.raises(FileNotFoundError, match="no finished scores file"):
        layout.finished("scores", **where)
    shard = Path(layout.path("score_shard", shard=0, **where))
    shard.parent.mkdir(parents=True)
    shard.write_text("x\n")
    assert layout.finished("scores", **where) == shard
    shard.with_name("shard-1.csv").write_text("x\n")  # two shards, not gathered: not finished
    with pytest.raises(FileNotFoundError):
        layout.finished("scores", **where)
    gathered = Path(layout.path("gathered_scores", **where))
    gathered.write_text("x\n")
    assert layout.finished("scores", **where) == gathered


def test_models_are_stored_once_by_name_or_per_training_seed() -> None:
    assert stored_path("base", "base", 3) == "base"
    assert stored_path("gpt2ref", "reference", 3) == "reference/gpt2ref"
    assert stored_path("wanda-0.50", "pruning", 3) == "seed-3/wanda-0.50"


def test_no_rule_spells_a_result_path() -> None:
    """The rules take every result path from the layout: no 'results/' and no directory of
    PATTERNS written into a rule file."""
    dirs = sorted({p.split("/")[0] for p in PATTERNS})
    spelled = re.compile(rf"[\"'/](results|{'|'.join(dirs)})/")
    offenders = [
        f"{smk.name}:{n}: {line.strip()}"
        for smk in sorted([*(REPO / "rules").rglob("*.smk"), REPO / "Snakefile"])
        for n, line in enumerate(smk.read_text().splitlines(), 1)
        if spelled.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, "\n".join(offenders)
