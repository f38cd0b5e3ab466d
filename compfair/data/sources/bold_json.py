"""``bold_json``: the real BOLD prompts (Dhamala et al. 2021), a folder of ``*_prompt.json``.

``path`` (required) is the folder, as in amazon-science/bold. Options:
``per_group`` (seeded sample per group), ``domains``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compfair.data.groups import GROUP_OPTIONS, add_bold_prompts, finish_bold
from compfair.data.sources import PromptSource, register_source, resolve_path
from compfair.data.textfile import read_text_file
from compfair.io import InputError

_BOLD_SUFFIX = "_prompt.json"


def _read_domain_file(file: Path) -> dict[str, Any]:
    """The ``{group: {entity: [prompt, ...]}}`` object of one BOLD file.

    Raises:
        InputError: invalid JSON (line named), bad UTF-8, or not an object.
    """
    try:
        data = json.loads(read_text_file(file))
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{file}: expected an object {{group: {{entity: [prompt, ...]}}}}")
    return data


def load_bold(
    path: Path,
    per_group: int | None,
    seed: int,
    domains: list[str] | None,
) -> list[dict[str, Any]]:
    """Load the real BOLD prompts (Dhamala et al. 2021).

    ``path`` is a folder of ``{domain}_prompt.json`` files shaped
    ``{group: {entity: [prompt, ...]}}`` (as in amazon-science/bold). The
    domain is the file name less ``_prompt.json``, the group the top-level key.
    Prompt text is stripped (BOLD prompts end with a space, which would end the
    prompt on a lone-space token); empty prompts (BOLD has five) are dropped
    with a warning. ``prompt_id`` is ``bold-<domain>-<group>-<n>`` with n the
    prompt's position in its group in file order. ``per_group`` prompts are
    drawn with ``seed`` from every group; rows are sorted by domain, group, id.

    Raises:
        InputError: a missing folder, no files, a malformed file (named).
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: BOLD folder not found")
    files = sorted(path.glob(f"*{_BOLD_SUFFIX}"))
    if not files:
        raise InputError(f"{path}: no *{_BOLD_SUFFIX} files")
    rows: list[dict[str, Any]] = []
    counters: dict[tuple[str, str], int] = {}
    n_empty = 0
    for file in files:
        domain = file.name[: -len(_BOLD_SUFFIX)]
        for group, entities in _read_domain_file(file).items():
            if not isinstance(entities, dict):
                raise InputError(f"{file}: group {group!r} is not an object of entities")
            for entity, prompts in entities.items():
                where = f"{file}: group {group!r}, entity {entity!r}"
                if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                    raise InputError(f"{where}: expected a list of strings")
                n_empty += add_bold_prompts(rows, counters, domain, group, prompts, where)
    return finish_bold(rows, n_empty, per_group, seed, domains, str(path))


@register_source("bold_json")
class BoldJSON(PromptSource):
    summary = "a folder of BOLD {domain}_prompt.json files (amazon-science/bold)"
    options_schema = {
        "properties": {"path": {"type": "string", "description": "The folder."}, **GROUP_OPTIONS},
        "required": ["path"],
    }
    local_path_keys = {"path": "dir"}

    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        return load_bold(
            resolve_path(spec["path"], repo_root),
            per_group=spec.get("per_group"),
            seed=seed,
            domains=spec.get("domains"),
        )
