"""Hugging Face hub data sets, and local copies of them, as plain rows.

:func:`fetch_hub_dataset` is the one hub loader of the project: it asks the
hub with a short timeout first, so that a machine without internet fails in
a second with a message naming the data set and the config key to point at a
local copy, instead of after the ``datasets`` library's retries. The
``datasets`` and ``huggingface_hub`` packages are imported only when a data
set is actually fetched or a saved copy is read.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import re
from pathlib import Path
from typing import Any

from compfair.io import InputError, jsonl_records

log = logging.getLogger(__name__)

#: Seconds the hub is given to answer before a fetch counts as offline.
HUB_TIMEOUT_S = 10.0

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: Suffixes of the data files a local copy may hold.
TABLE_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet")

#: A record of a data file: where it is (for messages), its line or row number, the object.
Record = tuple[str, int, dict[str, Any]]


def looks_like_hub_id(value: str) -> bool:
    """Whether ``value`` reads as ``owner/name`` (and not as a data file name)."""
    return bool(_HUB_ID.match(value)) and not value.lower().endswith(TABLE_SUFFIXES)


def _hub_error(
    repo_id: str, config_key: str, exc: BaseException | None, advice: str | None
) -> InputError:
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    advice = advice or f"set {config_key} to the local copy"
    return InputError(
        f"could not fetch {repo_id} from the Hugging Face hub (no internet?); download it on "
        f"a machine with internet and {advice}{detail}"
    )


def _probe(repo_id: str, config_key: str, advice: str | None) -> None:
    """Ask the hub about ``repo_id`` within :data:`HUB_TIMEOUT_S`; skipped with HF_HUB_OFFLINE."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi().dataset_info(repo_id, timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError as exc:
        raise InputError(
            f"{repo_id}: no such data set on the Hugging Face hub (check {config_key})"
        ) from exc
    except Exception as exc:  # httpx, requests and OSError failures share no base class
        raise _hub_error(repo_id, config_key, exc, advice) from exc


def _label_names(dataset: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level class-label ids of ``rows`` replaced by their names (in place)."""
    features = getattr(dataset, "features", None) or {}
    for name, feature in features.items():
        if hasattr(feature, "int2str"):
            for row in rows:
                if isinstance(row.get(name), int):
                    row[name] = feature.int2str(row[name])
    return rows


def fetch_hub_dataset(
    repo_id: str,
    config_key: str,
    *,
    name: str | None = None,
    split: str = "train",
    advice: str | None = None,
) -> list[dict[str, Any]]:
    """Every row of split ``split`` of hub data set ``repo_id`` (config ``name``), as dicts.

    The hub is asked first with a short timeout (:data:`HUB_TIMEOUT_S`), so
    that a machine without internet fails at once; with ``HF_HUB_OFFLINE=1``
    the probe is skipped and ``datasets`` uses a cached copy when there is one
    (it fails at once when there is none). Top-level class-label columns hold
    the label names, not their ids.

    Args:
        config_key: the config key that names the data set; the error says to
            set it to a local copy.
        advice: what the error tells the user to do instead of "set
            <config_key> to the local copy" (e.g. when two keys must change).

    Raises:
        InputError: the data set cannot be fetched (naming it and
            ``config_key``) or does not exist.
    """
    _probe(repo_id, config_key, advice)
    import datasets

    log.info("loading %s from the Hugging Face hub", repo_id)
    try:
        dataset = datasets.load_dataset(repo_id, name=name, split=split)
    except Exception as exc:  # ConnectionError, FileNotFoundError, hub HTTP errors ...
        raise _hub_error(repo_id, config_key, exc, advice) from exc
    return _label_names(dataset, dataset.to_list())


def _read_json_array(path: Path, opener: Any) -> list[Record]:
    """Records of a file holding one JSON array of objects."""
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    for i, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise InputError(f"{path}, item {i}: expected a JSON object")
    return [(f"{path}, item {i}", i, r) for i, r in enumerate(data, start=1)]


def read_table(path: Path) -> list[Record]:
    """Every record of a JSON-lines, JSON-array or Parquet file (optionally gzipped JSON).

    The number is the line number in a JSON-lines file, else the 1-based row.
    """
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError
            raise InputError(f"{path}: cannot read Parquet file ({exc})") from exc
        return [(f"{path}, row {i}", i, r) for i, r in enumerate(records, start=1)]
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            head = fh.read(4096).lstrip()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    if head.startswith("["):
        return _read_json_array(path, opener)
    return [(f"{path}, line {ln}", ln, r) for ln, r in jsonl_records(path)]


def _read_saved_dataset(path: Path) -> list[Record]:
    """Rows of a ``Dataset.save_to_disk`` folder (its ``train`` split, for a ``DatasetDict``)."""
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise InputError(f"{path}: saved data set has no 'train' split")
        loaded = loaded["train"]
    return [(f"{path}, row {i}", i, r) for i, r in enumerate(loaded.to_list(), start=1)]


def read_local_dataset(path: Path) -> list[Record]:
    """Records of a local copy of a hub data set.

    ``path`` is a data file (``.jsonl``, ``.json``, ``.parquet``, optionally
    gzipped JSON), a folder made by ``Dataset.save_to_disk`` (its ``train``
    split, if it is a ``DatasetDict``), or a folder of data files (e.g. a
    ``huggingface-cli download`` snapshot), all of which are read in sorted order.
    A single file keeps its own line / row numbers; records read from a folder
    are numbered 1, 2, ... across it.
    """
    if path.is_file():
        return read_table(path)
    if not path.is_dir():
        raise InputError(f"{path}: file or folder not found")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return _read_saved_dataset(path)
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.name.lower().endswith(TABLE_SUFFIXES)
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise InputError(
            f"{path}: no data files ({', '.join('*' + s for s in TABLE_SUFFIXES)}) in the folder"
        )
    log.info("%s: reading %s", path, ", ".join(str(f.relative_to(path)) for f in files))
    records = [rec for f in files for rec in read_table(f)]
    return [(where, i, r) for i, (where, _, r) in enumerate(records, start=1)]


def hub_path(raw: str | None, repo_root: Path) -> str | Path | None:
    """A hub source's configured ``path``: a local Path when it exists, else the string.

    A relative path is looked up under ``repo_root`` first, then as given.
    """
    if raw is None:
        return None
    p = Path(raw).expanduser()
    if not p.is_absolute() and (Path(repo_root) / p).exists():
        return Path(repo_root) / p
    return p if p.exists() else str(raw)


def hub_or_local(
    path: str | Path | None, default_id: str, config_key: str, repo_root: Path | None = None
) -> tuple[str, Path | None]:
    """Whether ``path`` is a local copy or a hub id: ``(hub id, None)`` or ``(str(path), path)``.

    An existing file or folder is local. Anything else that looks like
    ``owner/name`` is a hub id, also when it has already been made absolute
    by prefixing the repository folder.

    Raises:
        InputError: neither an existing file or folder nor a hub id.
    """
    if path is None:
        return default_id, None
    p = Path(path).expanduser()
    if p.exists():
        return str(p), p
    candidate = str(path)
    if repo_root is not None and p.is_absolute():
        with contextlib.suppress(ValueError):
            candidate = p.relative_to(repo_root).as_posix()
    if looks_like_hub_id(candidate):
        return candidate, None
    raise InputError(f"{path}: file or folder not found (config key {config_key})")


def hub_records(source: str, local: Path | None, config_key: str) -> list[Record]:
    """``(where, row number, row)`` of a hub data set, or of its local copy when there is one."""
    if local is not None:
        return read_local_dataset(local)
    return [
        (f"{source}, row {i}", i, r)
        for i, r in enumerate(fetch_hub_dataset(source, config_key), start=1)
    ]
