"""Prompt sources as plug-ins, registered by name.

A prompt source is one class in one module of this package (every module here
is imported when the registry is first used), or in a file named by the config
key ``plugins``::

    @register_source("my_prompts")
    class MyPrompts(PromptSource):
        summary = "my prompts, one JSON object a line"
        options_schema = {
            "properties": {"path": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
            "required": ["path"],
        }
        local_path_keys = {"path": "file"}   # checked before any job runs

        def load(self, spec, seed, repo_root, config_key):
            ...                              # rows in the workflow's prompt format

and named in the config (``prompts: {mine: {source: my_prompts, path: x.jsonl}}``).
:func:`source_problems` checks every prompt set of a config against the
registry before any job runs: the source name, its options (against
:attr:`PromptSource.options_schema`) and its local files and folders. The keys
``source`` and ``samples`` (the sampler's K) belong to the workflow, not to a
source; a key set to null counts as not set.

This package imports no torch, numpy or pandas: the Snakefile reads it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from compfair.data.hub import looks_like_hub_id
from compfair.plugins import Registry, schema_defaults

#: Keys of a prompt-set entry that the workflow uses and no source sees.
WORKFLOW_KEYS = ("source", "samples")

#: The kinds of :attr:`PromptSource.local_path_keys`: what the key's value must name.
PATH_KINDS = ("file", "dir", "file_or_dir", "local_or_hub")


class PromptSource(abc.ABC):
    """One way of getting prompts: the config keys it takes and how it reads them."""

    name: ClassVar[str] = "abstract"
    #: JSON-schema ``properties`` (and optional ``required``) of the keys the
    #: source takes besides ``source`` and ``samples``. Defaults are filled from it.
    options_schema: ClassVar[Mapping[str, Any]] = {}
    #: Keys whose value names a local path, with what it must be (:data:`PATH_KINDS`):
    #: ``file``, ``dir``, ``file_or_dir``, or ``local_or_hub`` (an existing file
    #: or folder, or else a hub id ``owner/name``). Relative paths are relative
    #: to the project folder.
    local_path_keys: ClassVar[Mapping[str, str]] = {}
    #: One line for the README and the schema's description.
    summary: ClassVar[str] = ""
    #: Whether its prompts may be empty (RealToxicityPrompts' unprompted setting).
    allows_empty_text: ClassVar[bool] = False

    @abc.abstractmethod
    def load(
        self, spec: Mapping[str, Any], seed: int, repo_root: Path, config_key: str
    ) -> list[dict[str, Any]]:
        """The prompts ``spec`` asks for, as rows of the workflow's prompt format.

        ``spec`` holds the source's options, already checked against
        :attr:`options_schema` and with its defaults filled (no ``source``, no
        ``samples``, no null values). ``seed`` seeds every sample;
        ``repo_root`` is the folder relative paths are relative to;
        ``config_key`` is the entry's key (``prompts.<name>``) for messages.

        Rows are ``{"prompt_id": str, "text": str, "domain": str | None,
        "group": str | None, "source_scores": {name: float}}`` plus any extra
        keys (``promptset`` is set by the caller), in the order to write them.

        Raises:
            InputError: unreadable or malformed input, naming file and line.
        """

    def check(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems that involve several options, as ``(key, message)`` (none by default)."""
        return []

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The options' defaults from :attr:`options_schema`."""
        return schema_defaults(cls.options_schema)


def _check_source(name: str, cls: type[PromptSource]) -> None:
    """Refuse (``ValueError``) a source whose path keys are of a kind not in :data:`PATH_KINDS`."""
    bad = {k: v for k, v in cls.local_path_keys.items() if v not in PATH_KINDS}
    if bad:
        raise ValueError(f"prompt source {name!r}: path kinds {bad} not in {PATH_KINDS}")


#: Every registered source class by name (the built-in ones appear on first read).
SOURCES: Registry[type[PromptSource]] = Registry(
    "prompt source", PromptSource, __name__, validate=_check_source
)
#: Class decorator: register a :class:`PromptSource` subclass under a name (``TypeError``: not
#: a PromptSource subclass; ``ValueError``: a taken name, or a path key of an unknown kind).
register_source = SOURCES.register


def load_builtin_sources() -> Registry[type[PromptSource]]:
    """Import every module of this package (once; each registers its source); return the registry."""
    SOURCES.load()
    return SOURCES


def get_source(name: str, key: str | None = None) -> PromptSource:
    """An instance of the source registered as ``name``; for an unknown name,
    :class:`~compfair.plugins.UnknownNameError` (a ``KeyError``) naming config key ``key``."""
    return SOURCES.lookup(name, key)()


def resolve_path(value: str | Path, repo_root: str | Path) -> Path:
    """A configured local path as a job opens it: ``~`` expanded, relative to ``repo_root``."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(repo_root) / p


def source_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a prompt-set entry that its source sees: set ones, less ``source``/``samples``."""
    return {k: v for k, v in spec.items() if v is not None and k not in WORKFLOW_KEYS}


_KIND_WORDS = {"file": "a file", "dir": "a folder"}


def _path_problem(kind: str, value: str, repo_root: str | Path, source: str) -> str | None:
    """What is wrong with a configured path of kind ``kind`` (None: fine)."""
    path = resolve_path(value, repo_root)
    if kind == "local_or_hub":
        if path.exists() or Path(value).expanduser().exists() or looks_like_hub_id(value):
            return None
        return f"file or folder not found, nor a hub id (owner/name): {value}"
    if not path.exists():
        noun = {"file": "file", "dir": "folder"}.get(kind, "file or folder")
        return f"{noun} not found: {value}"
    if kind == "file" and path.is_dir():
        return f"{value} is a folder; source {source!r} needs a file"
    if kind == "dir" and not path.is_dir():
        return f"{value} is a file; source {source!r} needs a folder"
    return None


def entry_problems(name: str, spec: Mapping[str, Any], repo_root: str | Path) -> list[str]:
    """Every problem of prompt set ``name``'s config entry, each naming its config key.

    Checks the source name against the registry, the options against its
    :attr:`~PromptSource.options_schema` and :meth:`~PromptSource.check`, and
    that each :attr:`~PromptSource.local_path_keys` value (given, or the
    default) exists and is of the right kind.
    """
    key = f"prompts.{name}"
    if not isinstance(spec, Mapping):
        return [f"config key {key}: expected a mapping with a 'source' key"]
    source_name = spec.get("source")
    if source_name not in SOURCES:
        return [SOURCES.unknown_message(source_name, f"{key}.source")]
    source = SOURCES[source_name]
    options = source_options(spec)
    problems = SOURCES.problems(source_name, options, key)
    full = {**source.defaults(), **options}
    if not problems:  # the cross-option checks assume well-typed options
        problems += [f"config key {key}.{k}: {msg}" for k, msg in source().check(full)]
    for option, kind in source.local_path_keys.items():
        value = full.get(option)
        if isinstance(value, str):  # a value of another type is reported above
            problem = _path_problem(kind, value, repo_root, source.name)
            if problem:
                problems.append(f"config key {key}.{option}: {problem}")
    return problems


def source_problems(config: Mapping[str, Any], repo_root: str | Path = ".") -> list[str]:
    """Every problem of the config's prompt sets (``config["prompts"]``), by config key.

    One message per problem, ``config key prompts.<name>.<key>: ...``; an empty
    list when every prompt set names a registered source with valid options
    and existing local files. Relative paths are relative to ``repo_root``.
    """
    prompts = config.get("prompts") or {}
    return [p for name in sorted(prompts) for p in entry_problems(name, prompts[name], repo_root)]


__all__ = [
    "PATH_KINDS",
    "SOURCES",
    "WORKFLOW_KEYS",
    "PromptSource",
    "entry_problems",
    "get_source",
    "load_builtin_sources",
    "register_source",
    "resolve_path",
    "source_options",
    "source_problems",
]
