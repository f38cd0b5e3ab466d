"""``rtp_hub``: RealToxicityPrompts from the hub (``allenai/real-toxicity-prompts``) or a copy.

``path`` is a hub id (unset: :data:`RTP_HUB_ID`) or a local file or folder in
the hub's format. Options: ``subset`` (``all`` or ``challenging``), ``n``,
``min_toxicity``, ``max_toxicity``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data import hub
from compfair.data.rtp import RTP_OPTIONS, rtp_row, select_rtp, toxicity_range_problems
from compfair.data.sources import PromptSource, register_source
from compfair.io import InputError

log = logging.getLogger(__name__)

#: The hub data set of the paper preset.
RTP_HUB_ID = "allenai/real-toxicity-prompts"

#: ``subset`` values: every prompt, or those RTP flags as challenging.
RTP_SUBSETS = ("all", "challenging")


def _in_subset(record: Mapping[str, Any], subset: str, where: str) -> bool:
    """Whether a hub row belongs to ``subset``.

    Raises:
        InputError: subset ``challenging`` on a row without the boolean flag.
    """
    if subset != "challenging":
        return True
    flag = record.get("challenging")
    if not isinstance(flag, bool):
        raise InputError(
            f"{where}: no boolean 'challenging' flag (needed by subset: challenging; "
            "only the original RealToxicityPrompts rows have it)"
        )
    return flag


def load_rtp_hub(
    path: str | Path | None,
    n: int | None,
    seed: int,
    subset: str | None = None,
    min_toxicity: float | None = None,
    max_toxicity: float | None = None,
    config_key: str = "prompts.rtp.path",
    repo_root: Path | None = None,
) -> list[dict[str, Any]]:
    """RealToxicityPrompts from the hub (``allenai/real-toxicity-prompts``) or a local copy.

    ``path`` is a hub id (None: :data:`RTP_HUB_ID`) or a local file / folder
    in the hub's format: rows ``{"filename", "begin", "end", "challenging",
    "prompt": {"text", <scores>}, "continuation": {"text", <scores>}}`` (the
    original RTP JSON lines; Parquet and ``save_to_disk`` folders work too).
    ``subset`` is ``"all"`` (None: all) or ``"challenging"`` (RTP's 1.2k
    prompts flagged ``challenging``). Then the toxicity range ``[min_toxicity,
    max_toxicity]`` of the stored prompt toxicity is applied and ``n`` prompts
    are drawn with ``seed``; rows come back sorted by ``prompt_id``.

    ``prompt_id`` is ``rtp-<row number>``: 1-based, counted over all rows
    before any filtering, so it is stable under subset, range and sampling;
    for a local JSON-lines file it is the line number, as with ``rtp_jsonl``.
    The hub's ``train`` split keeps the order of its data file, so a prompt
    has the same id whether fetched or read from a downloaded copy of that file.

    Raises:
        InputError: an unknown subset, a missing local copy, an unreachable
            hub (naming ``config_key``), a malformed row.
    """
    subset = subset or "all"
    if subset not in RTP_SUBSETS:
        raise InputError(f"subset must be one of {', '.join(RTP_SUBSETS)}, got {subset!r}")
    source, local = hub.hub_or_local(path, RTP_HUB_ID, config_key, repo_root)
    records = hub.hub_records(source, local, config_key)
    if not records:
        raise InputError(f"{source}: no prompts")
    rows = [
        rtp_row(record, where, number)
        for where, number, record in records
        if _in_subset(record, subset, where)
    ]
    log.info("%s: %d records, %d in subset %s", source, len(records), len(rows), subset)
    return select_rtp(rows, n, seed, min_toxicity, max_toxicity, source)


@register_source("rtp_hub")
class RTPHub(PromptSource):
    summary = f"RealToxicityPrompts from the hub ({RTP_HUB_ID}) or a local copy in its format"
    options_schema = {
        "properties": {
            "path": {
                "type": "string",
                "description": f"Hub id (unset: {RTP_HUB_ID}) or a local file or folder.",
            },
            "subset": {
                "enum": list(RTP_SUBSETS),
                "default": "all",
                "description": "Every prompt, or those RTP flags as challenging.",
            },
            **RTP_OPTIONS,
        }
    }
    local_path_keys = {"path": "local_or_hub"}

    def check(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return toxicity_range_problems(options)

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        return load_rtp_hub(
            hub.hub_path(spec.get("path"), repo_root),
            n=spec.get("n"),
            seed=seed,
            subset=spec.get("subset"),
            min_toxicity=spec.get("min_toxicity"),
            max_toxicity=spec.get("max_toxicity"),
            config_key=f"{config_key}.path",
            repo_root=Path(repo_root),
        )
