"""Prompt sets: one config entry through its registered source, checked, written.

:func:`prepare_prompts` is what the ``prepare_prompts`` rule runs. The source
does the reading (:mod:`compfair.data.sources`); the checks every prompt file
must pass, whatever made it, are here (:func:`check_prompt_rows`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data.sources import SOURCES, entry_problems, source_options
from compfair.io import InputError, write_jsonl

log = logging.getLogger(__name__)

#: The keys of every row of a prompt file, in the order they are written.
PROMPT_KEYS = ("prompt_id", "promptset", "text", "domain", "group", "source_scores")


def _label(row: Mapping[str, Any], key: str, where: str) -> str | None:
    value = row.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise InputError(f"{where}: {key!r} must be a non-empty string or null, got {value!r}")
    return value


def _checked_row(row: Any, promptset: str, where: str, empty_ok: bool = False) -> dict[str, Any]:
    """One row in the prompt format: the :data:`PROMPT_KEYS` first, then any extra keys.

    ``domain``, ``group`` and ``source_scores`` default to null, null and ``{}``.
    """
    if not isinstance(row, Mapping):
        raise InputError(f"{where}: a prompt must be a mapping, got {type(row).__name__}")
    pid, text, scores = row.get("prompt_id"), row.get("text"), row.get("source_scores", {})
    if not isinstance(pid, str) or not pid:
        raise InputError(f"{where}: prompt_id must be a non-empty string, got {pid!r}")
    if not isinstance(text, str) or (not text.strip() and not empty_ok):
        raise InputError(f"{where}, prompt {pid!r}: empty or missing text")
    if not isinstance(scores, Mapping):
        raise InputError(f"{where}, prompt {pid!r}: source_scores must be a mapping")
    out = {
        "prompt_id": pid,
        "promptset": promptset,
        "text": text,
        "domain": _label(row, "domain", f"{where}, prompt {pid!r}"),
        "group": _label(row, "group", f"{where}, prompt {pid!r}"),
        "source_scores": scores,
    }
    out.update((k, v) for k, v in row.items() if k not in PROMPT_KEYS)
    return out


def check_prompt_rows(
    rows: Any, promptset: str, where: str, empty_ok: bool = False
) -> list[dict[str, Any]]:
    """The rows a source returned, checked and labelled with ``promptset``.

    Every row gets ``promptset``; key order is :data:`PROMPT_KEYS` then the
    source's extra keys (e.g. ``source_continuation``), row order is kept.

    Raises:
        InputError: no rows, a row without a string ``prompt_id`` or with an
            empty text (unless ``empty_ok``: the unprompted setting), a non-string domain or group, a repeated ``prompt_id``.
    """
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{where}: no prompts selected (check n / per_group / toxicity range)")
    out, seen = [], set()
    for row in rows:
        checked = _checked_row(row, promptset, where, empty_ok)
        if checked["prompt_id"] in seen:
            raise InputError(f"{where}: prompt_id {checked['prompt_id']!r} appears twice")
        seen.add(checked["prompt_id"])
        out.append(checked)
    return out


def prepare_prompts(
    promptset: str,
    spec: Mapping[str, Any],
    out_path: Path,
    seed: int,
    repo_root: Path,
) -> int:
    """Load one prompt set as its config entry ``spec`` says and write it as JSON lines.

    ``spec["source"]`` names a registered source (:mod:`compfair.data.sources`;
    each module's docstring lists its options); the other keys are its
    options, checked against its ``options_schema`` first (``samples`` and
    keys set to null are ignored). A relative path is relative to
    ``repo_root``. Every row's ``promptset`` is set to ``promptset`` (the
    wildcard value); rows are written in the order the source gives them.

    Returns:
        The number of prompts written.

    Raises:
        InputError: an unknown source, a bad option or local path (each
            problem named by its config key ``prompts.<promptset>.<key>``), the
            source's own errors, an empty selection. Nothing is written then.
    """
    where = f"prompt set {promptset!r}"
    problems = entry_problems(promptset, spec, repo_root)
    if problems:
        raise InputError(f"{where}: " + "; ".join(problems))
    source = SOURCES[spec["source"]]
    options = {**source.defaults(), **source_options(spec)}
    rows = source().load(options, seed, Path(repo_root), f"prompts.{promptset}")
    rows = check_prompt_rows(rows, promptset, where, empty_ok=source.allows_empty_text)
    n = write_jsonl(out_path, rows)
    log.info("%s: %d prompts from source %s -> %s", where, n, source.name, out_path)
    return n
