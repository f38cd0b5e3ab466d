"""``bias_csv``: the project's BOLD-style bias prompts, a CSV of ``prompt_id,domain,group,text``.

``path`` (default ``data/bias_prompts.csv``) is the file. Options:
``per_group`` (seeded sample per group), ``domains``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data.groups import (
    GROUP_OPTIONS,
    by_group_and_id,
    check_group_names,
    select_domains,
)
from compfair.data.selection import select_per_group
from compfair.data.sources import PromptSource, register_source, resolve_path
from compfair.data.textfile import read_csv_file
from compfair.io import InputError

log = logging.getLogger(__name__)

#: Columns of the bias prompt CSV, in order.
BIAS_CSV_COLUMNS = ("prompt_id", "domain", "group", "text")

#: Default location of the project's bias prompts, relative to the repo root.
DEFAULT_BIAS_CSV = Path("data") / "bias_prompts.csv"


def _check_header(path: Path, header: list[str]) -> None:
    """Raise InputError (line 1) unless ``header`` holds exactly the four columns."""
    if not header:
        raise InputError(f"{path}: empty file (expected header {','.join(BIAS_CSV_COLUMNS)})")
    unknown = [h for h in header if h not in BIAS_CSV_COLUMNS]
    missing = [c for c in BIAS_CSV_COLUMNS if c not in header]
    if unknown or missing or len(header) != len(set(header)):
        raise InputError(
            f"{path}, line 1: header must be {','.join(BIAS_CSV_COLUMNS)}"
            + (f"; unknown column(s) {', '.join(unknown)}" if unknown else "")
            + (f"; missing column(s) {', '.join(missing)}" if missing else "")
        )


def read_bias_csv(path: Path) -> list[dict[str, Any]]:
    """Read and check a bias prompt CSV (columns ``prompt_id,domain,group,text``, any order).

    The file is UTF-8 (a leading byte-order mark is dropped); fields are
    stripped. Rows ``{"prompt_id", "promptset": "bold", "text", "domain",
    "group", "source_scores": {}}`` in file order.

    Raises:
        InputError: naming the file and line, for a missing or unknown column,
            a row with too many or too few fields, an empty field, a duplicate
            ``prompt_id``, bad UTF-8, or a group name that is ambiguous.
    """
    path = Path(path)
    header, records = read_csv_file(path)
    _check_header(path, header)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for lineno, fields in records:
        if len(fields) != len(header):
            raise InputError(
                f"{path}, line {lineno}: expected {len(header)} fields, got {len(fields)}"
            )
        record = {k: v.strip() for k, v in zip(header, fields, strict=True)}
        empty = [k for k in BIAS_CSV_COLUMNS if not record[k]]
        if empty:
            raise InputError(f"{path}, line {lineno}: empty field(s) {', '.join(empty)}")
        pid = record["prompt_id"]
        if pid in seen:
            raise InputError(
                f"{path}, line {lineno}: duplicate prompt_id {pid!r} (first on line {seen[pid]})"
            )
        seen[pid] = lineno
        rows.append(
            {
                "prompt_id": pid,
                "promptset": "bold",
                "text": record["text"],
                "domain": record["domain"],
                "group": record["group"],
                "source_scores": {},
            }
        )
    if not rows:
        raise InputError(f"{path}: no prompts")
    check_group_names(rows, str(path))
    return rows


def load_bias_prompts(
    path: Path,
    per_group: int | None,
    seed: int,
    domains: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Load the project's BOLD-style bias prompts from a checked CSV.

    ``per_group`` prompts are drawn with ``seed`` from every group (None = all);
    ``domains`` restricts the axes (None = all; an unknown one is an error).
    Rows ``{"prompt_id", "promptset": "bold", "text", "domain", "group",
    "source_scores": {}}`` sorted by domain, group and prompt_id.
    """
    rows = select_domains(read_bias_csv(path), domains, str(path))
    chosen = select_per_group(rows, per_group, seed, str(path), key=by_group_and_id)
    log.info(
        "%s: %d prompts in %d groups",
        path,
        len(chosen),
        len({(r["domain"], r["group"]) for r in chosen}),
    )
    return chosen


@register_source("bias_csv")
class BiasCSV(PromptSource):
    summary = "a CSV of prompt_id,domain,group,text (the project's data/bias_prompts.csv)"
    options_schema = {
        "properties": {
            "path": {
                "type": "string",
                "default": DEFAULT_BIAS_CSV.as_posix(),
                "description": "The CSV file.",
            },
            **GROUP_OPTIONS,
        }
    }
    local_path_keys = {"path": "file"}

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        return load_bias_prompts(
            resolve_path(spec["path"], repo_root),
            per_group=spec.get("per_group"),
            seed=seed,
            domains=spec.get("domains"),
        )
