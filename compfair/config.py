"""Config validation messages that name the offending key.

Snakemake's ``validate`` fills the schema's defaults and stops on the first
error with the schema path; :func:`config_errors` lists every error by config
key (``pruning.sparsities[1]: 1.5 is greater than or equal to the maximum of 1``)
so that a researcher sees at once which line of their YAML to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compfair.plugins import strict_validator, type_hint


def _key(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    with open(schema_path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


#: Keys of earlier versions, with what replaced them.
RENAMED_KEYS = {
    "pruning": "compression (e.g. compression: {magnitude: {levels: [0.1, 0.3, 0.5, 0.7]}})",
}


#: The schema's validator, with integers that are ints, not floats with no fraction.
StrictValidator = strict_validator()


def config_errors(config: dict[str, Any], schema_path: str | Path) -> list[str]:
    """Every schema violation of ``config`` as ``config key <key>: <message>``."""
    schema = load_schema(schema_path)
    validator = StrictValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    messages = [f"config key {_key(e.absolute_path)}: {e.message}{type_hint(e)}" for e in errors]
    messages += [
        f"config key {old}: no longer exists; use {new}"
        for old, new in RENAMED_KEYS.items()
        if old in config
    ]
    return messages


def project_path(value: str | None, root: str | Path) -> str | None:
    """A configured path as the job should open it: relative to the project ``root``.

    Configured paths stay as written in the rules' params (so that a moved
    project schedules nothing); the job resolves a relative one against the
    project folder, where it exists there. Anything else (an absolute path, a
    hub id) is returned as given.
    """
    if value is None:
        return None
    candidate = Path(root) / value
    if not Path(value).is_absolute() and candidate.exists():
        return str(candidate)
    return value


#: Config sections whose entries a preset may remove by setting them to null.
REMOVABLE = ("prompts", "compression", "references", "controls.models")


def drop_removed(config: dict[str, Any]) -> list[str]:
    """Remove, in place, the entries of :data:`REMOVABLE` sections a preset set to null.

    Snakemake layers a preset over config.yaml key by key, so a preset cannot
    otherwise leave out a prompt set or a compression method of the default.
    Returns the removed keys (for the log).
    """
    removed = []
    for section in REMOVABLE:
        entries: Any = config
        for part in section.split("."):
            entries = entries.get(part) if isinstance(entries, dict) else None
        if isinstance(entries, dict):
            for name in [k for k, v in entries.items() if v is None]:
                del entries[name]
                removed.append(f"{section}.{name}")
    return removed


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted, recursively (lists keep their order).

    Rule params are built from this, so that the same experiment written in
    another key order gives the same params and schedules nothing.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def missing_paths(config: dict[str, Any], repo_root: str | Path) -> list[str]:
    """Configured local files or folders that do not exist, as messages naming the key."""
    root = Path(repo_root)
    checks: list[tuple[str, Any]] = [("corpus.path", config.get("corpus", {}).get("path"))]
    messages = []
    for key, value in checks:
        if value is not None and not (root / value).exists():  # an absolute value ignores root
            messages.append(f"config key {key}: file or folder not found: {value}")
    base = config.get("base_model", {})
    if base.get("source") == "hf" and not base.get("path"):
        messages.append("config key base_model.path: required when base_model.source is 'hf'")
    local_models = [("base_model.path", base.get("path") if base.get("source") == "hf" else None)]
    local_models += [
        (f"references.{name}.path", (spec or {}).get("path"))
        for name, spec in (config.get("references") or {}).items()
    ]
    for key, value in local_models:
        # A hub id is owner/name; a local folder is written as one (./x, /x, ~/x) or exists.
        looks_local = isinstance(value, str) and value.startswith((".", "/", "~"))
        if looks_local and not (root / Path(value).expanduser()).is_dir():
            messages.append(f"config key {key}: model folder not found: {value}")
    scoring = config.get("scoring", {})
    pos, neg = scoring.get("sentiment_positive"), scoring.get("sentiment_negative")
    if isinstance(pos, int | float) and isinstance(neg, int | float) and pos <= neg:
        messages.append(
            f"config key scoring.sentiment_positive: {pos} must be above scoring.sentiment_negative ({neg})"
        )
    for key in ("toxicity_promptset", "bias_promptset"):
        name = config.get("report", {}).get(key)
        if name is not None and name not in config.get("prompts", {}):
            messages.append(
                f"config key report.{key}: '{name}' is not one of the prompt sets "
                f"({', '.join(config.get('prompts', {}))})"
            )
    return messages


def unknown_names(config: dict[str, Any]) -> list[str]:
    """Names in ``config`` that nothing is registered under, as messages naming the key.

    Checks ``scoring.toxicity_scorer`` against :data:`compfair.scoring.SCORERS`
    and ``scoring.scorer_options`` against what that scorer takes, so that a
    typo stops the run before any model is trained rather than at scoring time.
    """
    from compfair.scoring import scorer_option_problems  # lazily: the schema checks need no numpy

    scoring = config.get("scoring") or {}
    name = scoring.get("toxicity_scorer")
    if name is None:
        return []
    return scorer_option_problems(name, scoring.get("scorer_options") or {})
