"""Gather Snakemake's per-job ``benchmark:`` files into one table of job timings.

Called *job timings* (``tables/job_timings.csv``, rule ``gather_job_timings``) so that
"benchmark" means one thing in the package: a bias benchmark (:mod:`compfair.intrinsic`).
Snakemake's own ``benchmark:`` directive and ``benchmarks/`` folder keep their name; the
scripts that time the package are in ``bench/``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from compfair.io import InputError, write_csv
from compfair.worker import PEAK_PREFIX

log = logging.getLogger(__name__)

COLUMNS = ["rule", "wildcards", "seconds", "max_rss_mb"]
_WORKER_PEAK = re.compile(re.escape(PEAK_PREFIX) + r"(\d+(?:\.\d+)?) MB")


def worker_peak_mb(log_file: Path) -> float | None:
    """The peak resident memory the worker's child logged in ``log_file`` (the last), or None."""
    if not log_file.is_file():
        return None
    found = _WORKER_PEAK.findall(log_file.read_text(encoding="utf-8", errors="replace"))
    return float(found[-1]) if found else None


def gather_job_timings(bench_dir: Path, out_csv: Path, log_dir: Path | None = None) -> pd.DataFrame:
    """One row per benchmark file under ``bench_dir``.

    The layout is ``<bench_dir>/<rule>.tsv`` or ``<bench_dir>/<rule>/<wildcard
    values>.tsv``: the first path component names the rule, the rest (without
    the suffix) the wildcards. Each file is Snakemake's benchmark TSV; its last
    row (the last repeat) is taken. A job run by the worker (:mod:`compfair.worker`)
    is measured by Snakemake in the process that handed it over only; its log,
    ``<log_dir>/<the same path>.log``, holds its child's peak, which is taken then.
    """
    bench_dir, out_csv = Path(bench_dir), Path(out_csv)
    rows = []
    for path in sorted(bench_dir.rglob("*.tsv")):
        rel = path.relative_to(bench_dir).with_suffix("")
        rule, wildcards = rel.parts[0], "/".join(rel.parts[1:])
        try:
            frame = pd.read_csv(path, sep="\t")
            last = frame.iloc[-1]
            rss = float(last["max_rss"])
            peak = None if log_dir is None else worker_peak_mb(Path(log_dir) / f"{rel}.log")
            rows.append(
                {
                    "rule": rule,
                    "wildcards": wildcards,
                    "seconds": round(float(last["s"]), 2),
                    "max_rss_mb": round(rss if peak is None else max(rss, peak), 1),
                }
            )
        except (KeyError, IndexError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"{path}: not a Snakemake benchmark file ({exc})") from exc
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(out_csv, table)
    log.info(
        "%d benchmark(s) from %s, %.0f s in all", len(table), bench_dir, table["seconds"].sum()
    )
    return table
