"""Where a study writes: one pattern per kind of result file, read by the rules, tests and bench/.

Every path is relative to the working directory and lies under ``results/<study>/``. A pattern's
fields are Snakemake wildcards: :meth:`Layout.path` fills the fields it is given and leaves the
others as ``{field}``, so the rules take their output patterns from here, and tests and bench
scripts take concrete paths from the same place::

    layout = Layout("smoke")
    layout.path("scores", seed=7, model="teacher")  # 'results/smoke/scores/seed-7/teacher/{promptset}.csv'

A prompt set's generations (and scores) of one model are cut into shards of
``generation.shard_size`` prompts, one job each; :meth:`Layout.generations` and
:meth:`Layout.scores` name *the* file of a (seed, model, prompt set): the gathered file when the
prompt set has several shards, its only shard when it has one (no job copies a single shard).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compfair.variants import BASE

#: The result files of a study, relative to ``results/<study>/``.
PATTERNS: Mapping[str, str] = {
    "corpus": "data/corpus/{split}.jsonl",
    "tokens": "data/tokens/{split}.safetensors",
    "prompts": "data/prompts/{promptset}.jsonl",
    "model": "models/{modelpath}",
    "checkpoint": "checkpoints/{name}-seed{tseed}-{digest}",
    "generation_shard": "generations/seed-{seed}/{model}/{promptset}/shard-{shard}.jsonl",
    "gathered_generations": "generations/seed-{seed}/{model}/{promptset}.jsonl",
    "score_shard": "scores/seed-{seed}/{model}/{promptset}/shard-{shard}.csv",
    "gathered_scores": "scores/seed-{seed}/{model}/{promptset}.csv",
    "quality": "quality/seed-{seed}/{model}.json",
    "eval": "eval/{modelpath}.json",
    "intrinsic": "intrinsic/{modelpath}.csv",
    "intrinsic_items": "intrinsic_items/{modelpath}.csv",
    "table": "tables/{table}",
    "figure": "figures/{figure}.png",
}


class _Partial(string.Formatter):
    """Fills the fields it is given; leaves the others as ``{field}`` (Snakemake wildcards)."""

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        return kwargs[key] if key in kwargs else f"{{{key}}}"


def fill(pattern: str, **fields: Any) -> str:
    """``pattern`` with ``fields`` filled in and every other field left as a wildcard."""
    return _Partial().format(pattern, **fields)


def stored_path(model: str, family: str, tseed: int | str) -> str:
    """The ``{modelpath}`` of ``model``: the base model once, references by name, every other
    model per training seed."""
    if family == BASE:
        return BASE
    if family == "reference":
        return f"reference/{model}"
    return f"seed-{tseed}/{model}"


@dataclass(frozen=True)
class Layout:
    """The result paths of study ``study`` (under ``root``, the working directory)."""

    study: str
    root: Path | str = ""

    @property
    def results(self) -> str:
        return (
            str(Path(self.root) / "results" / self.study) if self.root else f"results/{self.study}"
        )

    def path(self, kind: str, **fields: Any) -> str:
        """The path (or wildcard pattern) of a result file of ``kind`` (a key of PATTERNS)."""
        if kind not in PATTERNS:
            raise KeyError(f"no result file of kind {kind!r} (kinds: {', '.join(PATTERNS)})")
        return f"{self.results}/{fill(PATTERNS[kind], **fields)}"

    def generations(self, shards: int, **fields: Any) -> str:
        """The generations file of (seed, model, prompt set): gathered, or the only shard."""
        if shards == 1:
            return self.path("generation_shard", shard=0, **fields)
        return self.path("gathered_generations", **fields)

    def scores(self, shards: int, **fields: Any) -> str:
        """The scores file of (seed, model, prompt set): gathered, or the only shard."""
        if shards == 1:
            return self.path("score_shard", shard=0, **fields)
        return self.path("gathered_scores", **fields)

    def shards(self, promptset: str, shard_size: int) -> int:
        """How many shards prompt set ``promptset`` has (its prompts must be prepared)."""
        return shard_count(self.path("prompts", promptset=promptset), shard_size)

    def finished(self, kind: str, **fields: Any) -> Path:
        """The generations (``kind="generations"``) or scores file of a finished (seed, model,
        prompt set), for readers that do not know the shard size: the gathered file, or the
        only shard. Raises FileNotFoundError when neither is there or the shards are not whole."""
        shard = Path(self.path(f"{kind[:-1]}_shard", shard=0, **fields))
        gathered = Path(self.path(f"gathered_{kind}", **fields))
        if gathered.is_file():
            return gathered
        if shard.is_file() and not shard.with_name(shard.name.replace("-0.", "-1.")).exists():
            return shard
        raise FileNotFoundError(f"no finished {kind} file at {gathered} or {shard}")

    def table(self, name: str) -> str:
        return self.path("table", table=name)

    def figure(self, name: str) -> str:
        return self.path("figure", figure=name)


def shard_count(prompts_file: Path | str, shard_size: int) -> int:
    """How many shards a prepared prompts file is cut into (at least one)."""
    with open(prompts_file, "rb") as fh:
        n = sum(1 for line in fh if line.strip())
    return max(1, -(-n // shard_size))
