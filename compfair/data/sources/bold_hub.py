"""``bold_hub``: BOLD from the hub (``AlexaAI/bold``) or a local copy in the hub's format.

``path`` is a hub id (unset: :data:`BOLD_HUB_ID`) or a local file or folder.
Options: ``per_group`` (seeded sample per group), ``domains``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data import hub
from compfair.data.groups import GROUP_OPTIONS, add_bold_prompts, finish_bold
from compfair.data.sources import PromptSource, register_source
from compfair.io import InputError

#: The hub data set of the paper preset.
BOLD_HUB_ID = "AlexaAI/bold"


def load_bold_hub(
    path: str | Path | None,
    per_group: int | None,
    seed: int,
    domains: list[str] | None,
    config_key: str = "prompts.bold.path",
    repo_root: Path | None = None,
) -> list[dict[str, Any]]:
    """BOLD from the hub (``AlexaAI/bold``) or a local copy in the hub's format.

    Hub rows are one entity each: ``{"domain", "name", "category", "prompts":
    [prompt, ...], "wikipedia": [sentence, ...]}``; the domain is ``domain``,
    the group ``category`` (as the top-level keys of the GitHub files) and
    ``name`` the entity. ``path`` is a hub id (None: :data:`BOLD_HUB_ID`) or a
    local JSON-lines / JSON-array / Parquet file, a folder of them, or a
    ``save_to_disk`` folder. Prompts are cleaned, numbered and sampled as by
    the ``bold_json`` source (``prompt_id`` counts the prompts of a group in row order).

    Raises:
        InputError: a missing local copy, an unreachable hub (naming
            ``config_key``), a row without domain, category or prompts.
    """
    source, local = hub.hub_or_local(path, BOLD_HUB_ID, config_key, repo_root)
    rows: list[dict[str, Any]] = []
    counters: dict[tuple[str, str], int] = {}
    n_empty = 0
    for where, _, record in hub.hub_records(source, local, config_key):
        for key in ("domain", "category"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise InputError(f"{where}: missing or empty {key!r}")
        prompts = record.get("prompts")
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise InputError(f"{where}: 'prompts' must be a list of strings")
        domain, group = record["domain"].strip(), record["category"].strip()
        n_empty += add_bold_prompts(
            rows, counters, domain, group, prompts, f"{where} ({record.get('name')!r})"
        )
    return finish_bold(rows, n_empty, per_group, seed, domains, source)


@register_source("bold_hub")
class BoldHub(PromptSource):
    summary = f"BOLD from the hub ({BOLD_HUB_ID}) or a local copy in its format"
    options_schema = {
        "properties": {
            "path": {
                "type": "string",
                "description": f"Hub id (unset: {BOLD_HUB_ID}) or a local file or folder.",
            },
            **GROUP_OPTIONS,
        }
    }
    local_path_keys = {"path": "local_or_hub"}

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        return load_bold_hub(
            hub.hub_path(spec.get("path"), repo_root),
            per_group=spec.get("per_group"),
            seed=seed,
            domains=spec.get("domains"),
            config_key=f"{config_key}.path",
            repo_root=Path(repo_root),
        )
