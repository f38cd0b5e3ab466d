"""Gather Snakemake's per-job ``benchmark:`` files into one table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from compfair.io import InputError, write_csv

log = logging.getLogger(__name__)

COLUMNS = ["rule", "wildcards", "seconds", "max_rss_mb"]


def gather_benchmarks(bench_dir: Path, out_csv: Path) -> pd.DataFrame:
    """One row per benchmark file under ``bench_dir``.

    The layout is ``<bench_dir>/<rule>.tsv`` or ``<bench_dir>/<rule>/<wildcard
    values>.tsv``: the first path component names the rule, the rest (without
    the suffix) the wildcards. Each file is Snakemake's benchmark TSV; its last
    row (the last repeat) is taken.
    """
    bench_dir, out_csv = Path(bench_dir), Path(out_csv)
    rows = []
    for path in sorted(bench_dir.rglob("*.tsv")):
        rel = path.relative_to(bench_dir).with_suffix("")
        rule, wildcards = rel.parts[0], "/".join(rel.parts[1:])
        try:
            frame = pd.read_csv(path, sep="\t")
            last = frame.iloc[-1]
            rows.append(
                {
                    "rule": rule,
                    "wildcards": wildcards,
                    "seconds": round(float(last["s"]), 2),
                    "max_rss_mb": round(float(last["max_rss"]), 1),
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
