"""Run the smoke preset once per test session, in a scratch working directory.

The workflow runs with ``--directory`` so that the repository's own
``results/`` is never touched; every workflow test reads the same run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# The smoke models are tiny: one thread per job for the rules that take two
# lets two jobs run at once on the 2-core machines of CI.
TWO_THREAD_RULES = ["import_base_model", "finetune_teacher", "distill_student"]
ONE_THREAD = ["--set-threads", *[f"{rule}=1" for rule in TWO_THREAD_RULES]]


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in ``workdir``."""
    cmd = [
        *SNAKEMAKE,
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--cores", "2",
        *args,
        *ONE_THREAD,  # last: it takes several values, and would swallow a target
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def write_config(workdir: Path, name: str, overrides: dict) -> Path:
    """A config file layered over the smoke preset."""
    path = workdir / name
    path.write_text(yaml.safe_dump(overrides))
    return path


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts per rule from the stats table of a dry run (empty if nothing to do)."""
    counts: dict[str, int] = {}
    text = proc.stdout + proc.stderr
    table = text.split("Job stats:", 1)
    if len(table) < 2:
        return counts
    for line in table[1].splitlines():
        m = re.match(r"^([a-z_]+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
        if line.startswith("total"):
            break
    return counts


def requested_gpus(proc: subprocess.CompletedProcess) -> dict[str, set[int]]:
    """The `gpu` values each rule's jobs ask for, from a dry run's job listing."""
    gpus: dict[str, set[int]] = {}
    text = proc.stdout + proc.stderr
    for rule, body in re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)+)", text, re.M):
        found = re.search(r"^    resources: .*\bgpu=(\d+)", body, re.M)
        gpus.setdefault(rule, set()).add(int(found.group(1)) if found else 0)
    return gpus


SMOKE = str(REPO / "presets" / "smoke.yaml")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete smoke run; returns its working directory."""
    workdir = tmp_path_factory.mktemp("smoke")
    snakemake(workdir, "--configfile", SMOKE)
    return workdir
