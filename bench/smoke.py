"""How long the smoke preset takes from a fresh folder, with and without the worker, and a
no-op rerun of it.

    .venv/bin/python bench/smoke.py [--repeats 1] [--cores 2]

Each repeat runs, side by side in one process, the smoke preset in two fresh folders: once
with the pre-imported worker (``compfair/worker.py``, the default) and once with
``COMPFAIR_WORKER=0`` (every job imports torch and transformers itself); then ``snakemake -n``
in the first folder (a no-op rerun: it must plan nothing). Wall-clock seconds of the whole
Snakemake process, start-up included; the worker's first run also pays for starting the worker.
The issue's targets: the smoke preset within 45 s on the 2-core machine, a no-op rerun within
2 s. Prints one table; docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "presets" / "smoke.yaml")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def snakemake(workdir: Path, cores: int, *args: str, worker: bool = True) -> float:
    """Seconds one Snakemake process takes on the smoke preset in ``workdir``."""
    env = {**ENV, "COMPFAIR_WORKER": "1" if worker else "0"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "--configfile", SMOKE, "--cores", str(cores), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"snakemake failed in {workdir}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    if "-n" in args and "Nothing to be done" not in proc.stdout + proc.stderr:
        raise SystemExit(f"the rerun in {workdir} planned jobs:\n{proc.stdout[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="compfair-smoke-") as tmp:
        for r in range(args.repeats):
            on, off = Path(tmp, f"worker-{r}"), Path(tmp, f"no-worker-{r}")
            rows.append(("smoke preset, worker (default)", snakemake(on, args.cores)))
            rows.append(
                ("smoke preset, COMPFAIR_WORKER=0", snakemake(off, args.cores, worker=False))
            )
            rows.append(("no-op rerun (snakemake -n)", snakemake(on, args.cores, "-n")))
    print(f"smoke preset, --cores {args.cores}, {os.cpu_count()} CPUs, {args.repeats} repeat(s)\n")
    print("| run | s |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} |")
    on = [s for n, s in rows if n.endswith("(default)")]
    off = [s for n, s in rows if n.endswith("=0")]
    print(
        f"\nworker saves {1 - min(on) / min(off):.0%} of the smoke preset's wall time (best runs)"
    )


if __name__ == "__main__":
    main()
