"""What every registry of plug-ins shares: importing a package's modules, and option defaults.

The registries (compression methods, prompt sources, intrinsic benchmarks, figures) each keep
their own dictionary and decorator; these two helpers are the parts they had written alike.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import ModuleType
from typing import Any


def import_submodules(package: ModuleType, skip_private: bool = False) -> None:
    """Import every module of ``package`` in name order (each registers its plug-ins).

    With ``skip_private``, modules whose names start with ``_`` are left out.
    """
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not (skip_private and info.name.startswith("_")):
            importlib.import_module(f"{package.__name__}.{info.name}")


def schema_defaults(options_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of every property of a JSON-schema object that has one."""
    props = options_schema.get("properties", {})
    return {k: v["default"] for k, v in props.items() if "default" in v}
