"""Config validation messages that name the offending key.

Snakemake's ``validate`` fills the schema's defaults and stops on the first
error with the schema path; :func:`config_errors` lists every error by config
key (``pruning.sparsities[1]: 1.5 is greater than or equal to the maximum of 1``)
so that a researcher sees at once which line of their YAML to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml


#: Prompt sources whose ``path`` may name a hub dataset rather than a local file.
HUB_SOURCES = ("rtp_hub", "bold_hub")


def _key(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    with open(schema_path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def config_errors(config: dict[str, Any], schema_path: str | Path) -> list[str]:
    """Every schema violation of ``config`` as ``config key <key>: <message>``."""
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"config key {_key(e.absolute_path)}: {e.message}" for e in errors]


def missing_paths(config: dict[str, Any], repo_root: str | Path) -> list[str]:
    """Configured local files or folders that do not exist, as messages naming the key."""
    root = Path(repo_root)
    checks: list[tuple[str, Any]] = [("corpus.path", config.get("corpus", {}).get("path"))]
    for name, spec in config.get("prompts", {}).items():
        if spec.get("source") not in HUB_SOURCES:  # their path may be a hub id
            checks.append((f"prompts.{name}.path", spec.get("path")))
    messages = []
    for key, value in checks:
        if value is not None and not (root / value).exists():  # an absolute value ignores root
            messages.append(f"config key {key}: file or folder not found: {value}")
    base = config.get("base_model", {})
    if base.get("source") == "hf" and not base.get("path"):
        messages.append("config key base_model.path: required when base_model.source is 'hf'")
    for key in ("toxicity_promptset", "bias_promptset"):
        name = config.get("report", {}).get(key)
        if name is not None and name not in config.get("prompts", {}):
            messages.append(
                f"config key report.{key}: '{name}' is not one of the prompt sets "
                f"({', '.join(config.get('prompts', {}))})"
            )
    return messages
