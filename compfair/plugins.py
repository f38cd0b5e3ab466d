"""What every registry of plug-ins shares: importing modules, plug-in files, option defaults.

The registries (compression methods, prompt sources, intrinsic benchmarks, scorers, figures)
each keep their own dictionary and decorator; the helpers here are the parts they share.
The config's ``plugins`` (files or modules that register entries as they are imported) are
loaded at planning by ``rules/common.smk`` and in every job by :func:`load_job_plugins`,
which every rule script calls: so a plug-in of any kind reaches every job that may look it up,
and ``plugins`` is never a job's param (adding a plug-in file reruns nothing finished). A job
that uses an entry a plug-in file defines has that file as an input
(:func:`plugin_file_of`), so editing the plug-in reruns exactly those jobs.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

#: Modules loaded from plug-in files are named ``compfair_plugin_<file stem>``.
PLUGIN_PREFIX = "compfair_plugin_"


def import_submodules(package: ModuleType, skip_private: bool = False) -> None:
    """Import every module of ``package`` in name order (each registers its plug-ins).

    With ``skip_private``, modules whose names start with ``_`` are left out.
    """
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not (skip_private and info.name.startswith("_")):
            importlib.import_module(f"{package.__name__}.{info.name}")


def option_problems(
    options_schema: Mapping[str, Any],
    options: Mapping[str, Any],
    key: str,
    what: str,
    also_takes: tuple[str, ...] = (),
) -> list[str]:
    """Unknown, missing and ill-typed options of one registry entry, each naming
    ``<key>.<option>``; ``what`` says whose (``"method 'rtn'"``), ``also_takes`` the keys
    the workflow reads beside the schema's (listed as taken). Types go through the config's
    own validator, where an integer is an int (YAML's ``128.0`` is not)."""
    from compfair.config import StrictValidator, _hint

    props = options_schema.get("properties", {})
    takes = ", ".join([*also_takes, *sorted(props)]) or "no options"
    problems = [
        f"config key {key}.{k}: unknown option of {what} (it takes: {takes})"
        for k in sorted(set(options) - set(props) - set(also_takes))
    ]
    problems += [
        f"config key {key}.{k}: required by {what}"
        for k in options_schema.get("required", ())
        if k not in options
    ]
    schema = {"type": "object", "properties": props}
    errors = StrictValidator(schema).iter_errors(dict(options))
    for err in sorted(errors, key=lambda e: list(map(str, e.path))):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        problems.append(f"config key {key}{where}: {err.message}{_hint(err)}")
    return problems


def schema_defaults(options_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of every property of a JSON-schema object that has one."""
    props = options_schema.get("properties", {})
    return {k: v["default"] for k, v in props.items() if "default" in v}


def load_plugins(paths: Iterable[str], root: str | Path = ".") -> None:
    """Import extra plug-in modules: each a ``.py`` file (relative to ``root``) or a module name.

    A plug-in registers methods, scorers or other registry entries as it is
    imported; each is imported once a process. A missing file raises
    ``FileNotFoundError`` naming it.
    """
    for entry in paths:
        if entry.endswith(".py"):
            path = Path(entry) if Path(entry).is_absolute() else Path(root) / entry
            if not path.is_file():
                raise FileNotFoundError(f"config key plugins: file not found: {entry}")
            name = f"{PLUGIN_PREFIX}{path.stem}"
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(entry)


def load_job_plugins(job: Any) -> None:
    """Load the config's ``plugins`` in a rule script (``job``: its ``snakemake`` object).

    Every script calls this after :func:`compfair.worker.hand_over`; the files
    are relative to the project (the scripts' parent folder).
    """
    load_plugins(job.config.get("plugins") or [], Path(job.scriptdir).parent)


def plugin_file_of(entry: Any) -> str | None:
    """The plug-in file that defines ``entry`` (a registered class, an instance or a function),
    or None for the package's own entries and plug-ins given as module names."""
    target = entry if inspect.isclass(entry) or inspect.isfunction(entry) else type(entry)
    module = getattr(target, "__module__", "") or ""
    if not module.startswith(PLUGIN_PREFIX):
        return None
    return getattr(sys.modules.get(module), "__file__", None)
