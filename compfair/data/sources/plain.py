"""``plain``: bring your own prompts, from a text, CSV or JSON-lines file.

``path`` (required) is one of:

* a ``.txt`` file: one prompt a line; blank lines are skipped;
* a ``.csv`` file with a header: a ``text`` column and optional
  ``prompt_id``, ``domain`` and ``group`` columns (UTF-8; a byte-order mark
  from a spreadsheet program is dropped);
* a ``.jsonl`` file: one object a line with the same keys.

Texts are stripped of surrounding whitespace (a prompt ending in a space
would end on a lone-space token). A prompt without a ``prompt_id`` gets
``line-<line number, 6 digits>``, stable under sampling and reruns; a
repeated id is an error naming both lines. ``domain`` and ``group`` are
null when not given (a group without a domain is reported under the prompt
set's name). Options: ``n`` (a seeded sample) or ``per_group`` (a seeded
sample of every group; every prompt then needs a group). Prompts keep the
order of the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from compfair.data.groups import check_group_names
from compfair.data.selection import seeded_selection, select_per_group
from compfair.data.sources import PromptSource, register_source, resolve_path
from compfair.data.textfile import read_csv_file, read_text_file
from compfair.io import InputError

log = logging.getLogger(__name__)

#: The keys of a CSV or JSON-lines prompt: ``text`` and the optional ones.
PLAIN_COLUMNS = ("prompt_id", "domain", "group", "text")
#: File suffixes the source reads, by format.
PLAIN_FORMATS = {".txt": "text", ".csv": "csv", ".jsonl": "jsonl"}

#: One prompt as read: (line, text, prompt_id, domain, group), unset values None.
_Item = tuple[int, Any, Any, Any, Any]


def _text_items(path: Path) -> Iterator[_Item]:
    """One item per non-blank line of a text file."""
    for lineno, line in enumerate(read_text_file(path).split("\n"), start=1):
        if line.strip():
            yield lineno, line, None, None, None


def _check_keys(where: str, keys: list[str]) -> None:
    """Raise InputError unless ``keys`` has ``text`` and nothing outside :data:`PLAIN_COLUMNS`."""
    unknown = [k for k in keys if k not in PLAIN_COLUMNS]
    if "text" not in keys or unknown:
        raise InputError(
            f"{where}: "
            + ("no 'text' column" if "text" not in keys else "")
            + ("; " if "text" not in keys and unknown else "")
            + (f"unknown column(s) {', '.join(repr(k) for k in unknown)}" if unknown else "")
            + " (the columns are text and, optionally, prompt_id, domain, group)"
        )


def _csv_items(path: Path) -> Iterator[_Item]:
    """One item per non-blank CSV record; empty optional fields are None."""
    header, records = read_csv_file(path)
    if not header:
        raise InputError(f"{path}: empty file (expected a header with a 'text' column)")
    if len(set(header)) != len(header):
        raise InputError(f"{path}, line 1: a column name appears twice")
    _check_keys(f"{path}, line 1", header)
    for lineno, fields in records:
        if len(fields) != len(header):
            raise InputError(
                f"{path}, line {lineno}: expected {len(header)} fields, got {len(fields)}"
            )
        record = {k: v.strip() or None for k, v in zip(header, fields, strict=True)}
        yield lineno, record["text"] or "", *(record.get(k) for k in PLAIN_COLUMNS[:3])


def _jsonl_items(path: Path) -> Iterator[_Item]:
    """One item per non-blank line of a JSON-lines file (keys as in a CSV)."""
    for lineno, line in enumerate(read_text_file(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise InputError(f"{path}, line {lineno}: expected a JSON object")
        _check_keys(f"{path}, line {lineno}", list(record))
        yield lineno, record["text"], *(record.get(k) for k in PLAIN_COLUMNS[:3])


_READERS = {"text": _text_items, "csv": _csv_items, "jsonl": _jsonl_items}


def _label(value: Any, key: str, where: str) -> str | None:
    """An optional string field: stripped, None when unset or blank (an int id becomes a string)."""
    if value is None:
        return None
    if key == "prompt_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"{where}: {key!r} must be a string, got {value!r}")
    return value.strip() or None


def _rows(path: Path, items: Iterator[_Item]) -> list[dict[str, Any]]:
    """Prompt rows of the items, in file order; ids defaulted and checked for repeats."""
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for lineno, text, prompt_id, domain, group in items:
        where = f"{path}, line {lineno}"
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: empty or missing text")
        pid = _label(prompt_id, "prompt_id", where) or f"line-{lineno:06d}"
        if pid in first_line:
            raise InputError(
                f"{where}: duplicate prompt_id {pid!r} (first on line {first_line[pid]})"
            )
        first_line[pid] = lineno
        rows.append(
            {
                "prompt_id": pid,
                "promptset": "plain",
                "text": text.strip(),
                "domain": _label(domain, "domain", where),
                "group": _label(group, "group", where),
                "source_scores": {},
                "_line": lineno,
            }
        )
    if not rows:
        raise InputError(f"{path}: no prompts")
    return rows


def _choose(
    rows: list[dict[str, Any]], n: int | None, per_group: int | None, seed: int, what: str
) -> list[dict[str, Any]]:
    """``n`` rows, or ``per_group`` of every group, drawn with ``seed``, in file order."""
    if per_group is None:
        return seeded_selection(rows, n, seed, what)
    lacking = next((r for r in rows if r["group"] is None), None)
    if lacking is not None:
        raise InputError(
            f"{what}, line {lacking['_line']}: no group (per_group needs one on every prompt)"
        )
    return select_per_group(rows, per_group, seed, what)


def load_plain(
    path: Path, n: int | None = None, per_group: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """The prompts of a ``.txt``, ``.csv`` or ``.jsonl`` file (see the module docstring).

    Rows ``{"prompt_id", "promptset": "plain", "text", "domain", "group",
    "source_scores": {}}`` in file order, ``n`` of them (None: all) or
    ``per_group`` of every group, drawn with ``seed``.

    Raises:
        InputError: naming the file (and line): an unknown suffix, bad UTF-8,
            a missing ``text`` column, an unknown column, an empty text, a
            repeated ``prompt_id``, a group in two domains, ``per_group`` on
            a prompt without a group, no prompts.
    """
    path = Path(path)
    kind = PLAIN_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: the plain source reads {', '.join(PLAIN_FORMATS)} files")
    rows = _rows(path, _READERS[kind](path))
    check_group_names(rows, str(path))
    chosen = _choose(rows, n, per_group, seed, str(path))
    log.info("%s: %d prompts, %d chosen", path, len(rows), len(chosen))
    return [{k: v for k, v in row.items() if k != "_line"} for row in chosen]


@register_source("plain")
class Plain(PromptSource):
    summary = "your own prompts: a .txt file (one a line) or a .csv/.jsonl file with a text column"
    options_schema = {
        "properties": {
            "path": {"type": "string", "description": "The .txt, .csv or .jsonl file."},
            "n": {"type": "integer", "minimum": 1, "description": "Seeded sample (unset: all)."},
            "per_group": {
                "type": "integer",
                "minimum": 1,
                "description": "Seeded sample of this many prompts per group (unset: all).",
            },
        },
        "required": ["path"],
    }
    local_path_keys = {"path": "file"}

    def check(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        suffix = Path(str(options.get("path", ""))).suffix.lower()
        if "path" in options and suffix not in PLAIN_FORMATS:
            problems.append(("path", f"the plain source reads {', '.join(PLAIN_FORMATS)} files"))
        if options.get("n") is not None and options.get("per_group") is not None:
            problems.append(("per_group", "give n or per_group, not both"))
        return problems

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        if spec.get("n") is not None and spec.get("per_group") is not None:
            raise InputError(f"{config_key}: give n or per_group, not both")
        return load_plain(
            resolve_path(spec["path"], repo_root),
            n=spec.get("n"),
            per_group=spec.get("per_group"),
            seed=seed,
        )
