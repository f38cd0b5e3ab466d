"""File input/output with the workflow's guarantees.

Outputs are final or absent: everything is written to a temporary sibling and
renamed into place only when complete, so a crash, a kill or a full disk never
leaves a half-written file where a later rule would read it. Readers check
every line and raise :class:`InputError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import json
import logging
import os
import platform
import random
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


class InputError(ValueError):
    """Bad input: the message names the file and line, or the config key."""


def _remove_stale(path: Path, marker: str) -> None:
    """Remove temporaries of ``path`` left by a writer that was killed mid-write.

    Snakemake never runs two jobs for one output, so any temporary of this
    target that exists now belongs to a dead writer.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}{marker}*"):
        log.warning("removing %s, left by an interrupted write", stale)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The temporary name keeps the suffix of ``path`` so that writers that
    dispatch on the extension (matplotlib, pandas) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path, ".")
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=suffix if suffix is not None else path.suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are for sharing
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; rename it onto ``path`` on success.

    An existing ``path`` is replaced only after the new directory is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path, ".tmp-")
    _remove_stale(path, ".old-")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: PathLike, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write one JSON object a line, atomically; return the number of rows."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def write_csv(path: PathLike, frame: Any) -> None:
    """Write a pandas DataFrame to CSV atomically (no index)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")


def read_json(path: PathLike) -> Any:
    """Read a JSON file; a parse error names the file and line."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc


def jsonl_records(path: PathLike) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-blank line of a JSON-lines file.

    A ``.gz`` suffix is read through gzip. A missing or unreadable file, a line
    that is not a JSON object, bad UTF-8 or a truncated archive raises
    :class:`InputError` naming the file (and the line where there is one).
    """
    path = Path(path)
    records: list[tuple[int, dict[str, Any]]] = []
    try:
        fh = (
            gzip.open(path, "rt", encoding="utf-8")
            if path.suffix == ".gz"
            else open(path, encoding="utf-8")
        )
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    with fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise InputError(f"{path}, line {lineno}: expected a JSON object")
                records.append((lineno, record))
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
            raise InputError(f"{path}: cannot read file ({exc})") from exc
    return records


def read_jsonl(path: PathLike, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Read a JSON-lines file, checking every line (see :func:`jsonl_records`).

    A row that lacks one of the ``required`` keys raises :class:`InputError`
    naming file and line.
    """
    required = tuple(required)
    rows: list[dict[str, Any]] = []
    for lineno, row in jsonl_records(path):
        missing = [k for k in required if k not in row]
        if missing:
            raise InputError(f"{path}, line {lineno}: missing key(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (if installed) for a deterministic step."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


_TRACKED = ("torch", "transformers", "compfair", "snakemake", "numpy", "pandas")


def provenance(**fields: Any) -> dict[str, Any]:
    """Describe how an artefact was made: the given fields plus package versions."""
    versions = {}
    for name in _TRACKED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {**fields, "python": platform.python_version(), "packages": versions}


def setup_logging(
    log_file: PathLike | None = None, level: int = logging.INFO, threads: int | None = None
) -> None:
    """Send logging, and all of stderr (progress bars, warnings), to ``log_file``.

    Rule scripts call this with the rule's ``log:`` so that everything a job
    says ends up in its log; without a file, logging goes to stderr. With
    ``threads`` (the rule's ``threads``), torch uses exactly that many CPU
    threads: jobs then share the machine as Snakemake planned, and the
    floating-point reduction order (hence the numbers) does not depend on the
    machine's core count.
    """
    import sys

    if threads is not None:
        # Before torch is imported the environment decides its thread count; a
        # job that has imported it already is set directly. Jobs that never use
        # torch (the offline scorer, the tables) do not pay for importing it.
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(max(1, int(threads)))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(max(1, int(threads)))

    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(sys.stderr)],
        force=True,
    )


def concatenate_shards(shards: Iterable[PathLike], out_path: PathLike) -> int:
    """Join shard files, in the given order, into ``out_path`` atomically.

    JSON-lines shards are checked line by line; CSV shards must share one
    header, which is written once. Returns the number of data rows.
    """
    shards = [Path(p) for p in shards]
    out_path = Path(out_path)
    if not shards:
        raise InputError(f"{out_path}: no shards to gather")
    n = 0
    with atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        if out_path.suffix == ".jsonl":
            for shard in shards:
                for row in read_jsonl(shard):
                    out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                    n += 1
        elif out_path.suffix == ".csv":
            header: str | None = None
            for shard in shards:
                with open(shard, encoding="utf-8") as fh:
                    first = fh.readline()
                    if header is None:
                        header = first
                        out.write(header)
                    elif first != header:
                        raise InputError(f"{shard}, line 1: header differs from {shards[0]}")
                    for line in fh:
                        out.write(line)
                        n += 1
        else:
            raise InputError(f"{out_path}: cannot gather files of type {out_path.suffix!r}")
    return n
