"""Run the smoke preset once per test session, in a scratch working directory.

The workflow runs with ``--directory`` so that the repository's own
``results/`` is never touched; every workflow test reads the same run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compfair.layout import Layout

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in ``workdir``."""
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
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
    for rule, body in re.findall(
        r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)+)", text, re.M
    ):
        found = re.search(r"^    resources: .*\bgpu=(\d+)", body, re.M)
        gpus.setdefault(rule, set()).add(int(found.group(1)) if found else 0)
    return gpus


SMOKE = str(REPO / "presets" / "smoke.yaml")
#: Where the smoke study writes, relative to the working directory.
SMOKE_RESULTS = Path("results") / yaml.safe_load(Path(SMOKE).read_text())["study"]
#: Its result paths (compfair/layout.py).
SMOKE_LAYOUT = Layout(SMOKE_RESULTS.name)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete smoke run; returns its working directory (results under SMOKE_RESULTS)."""
    workdir = tmp_path_factory.mktemp("smoke")
    snakemake(workdir, "--configfile", SMOKE)
    return workdir


@pytest.fixture
def smoke_copy(smoke_run: Path, tmp_path: Path) -> Path:
    """A copy of the finished smoke run (times kept), for tests that change it."""
    target = tmp_path / "copy"
    shutil.copytree(smoke_run, target, symlinks=True)
    return target
