"""The smoke preset on a real SLURM cluster: every job goes through sbatch, and
the metrics table is byte-identical to the one a single machine makes.

Opt-in, because it needs a cluster and takes minutes: set ``COMPFAIR_SLURM=1``
with a cluster that ``sinfo`` can see, e.g. the single-node one from
``tests/cluster/start_slurm.sh`` (``tests/cluster/run.sh`` does both). With the
variable unset every test here is skipped; with it set and no cluster
answering they fail, so a CI job that asked for the cluster cannot pass
without one.

``COMPFAIR_SLURM_WORKDIR`` puts the scratch directories elsewhere than the
pytest temporary directory: on a multi-node cluster it must be a filesystem
the compute nodes share.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from tests.workflow.conftest import REPO, SMOKE

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(
        os.environ.get("COMPFAIR_SLURM") != "1",
        reason="SLURM test is opt-in: set COMPFAIR_SLURM=1 (see tests/cluster/run.sh)",
    ),
]

SLURM_PROFILE = str(REPO / "profiles" / "slurm")
# The whole smoke run takes about 6 minutes on 2 cores; a job stuck pending
# (a request the cluster can never satisfy) must not hang CI for ever.
TIMEOUT_S = int(os.environ.get("COMPFAIR_SLURM_TIMEOUT", "1800"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def gpu_rules() -> list[str]:
    """The rules that declare a `gpu` resource in rules/*.smk."""
    names = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"^(?:rule|checkpoint) (\w+):$", smk.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            if re.search(r"^\s+gpu=", body, re.M):
                names.append(name)
    return names


# The test cluster has no GPU: the site setting of profiles/slurm for such a
# cluster, given on the command line.
CPU_ONLY = [f"{rule}:gpu=0" for rule in gpu_rules()]


def run_snakemake(workdir: Path, *args: str) -> str:
    """Run the smoke preset in ``workdir``; return Snakemake's combined output.

    On a timeout Snakemake is interrupted (it then cancels its SLURM jobs) and
    the test fails with what the queue looked like.
    """
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        SMOKE,
        *args,
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        queue = subprocess.run(["squeue", "--states=all"], capture_output=True, text=True).stdout
        raise AssertionError(
            f"snakemake timed out after {TIMEOUT_S}s\n{output[-4000:]}\nsqueue:\n{queue}"
        ) from None
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-8000:]}")
    return output


def scratch(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    base = os.environ.get("COMPFAIR_SLURM_WORKDIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="module")
def cluster() -> str:
    """The name of a node the cluster reports ready; fails if there is none."""
    if shutil.which("sinfo") is None:
        pytest.fail("COMPFAIR_SLURM=1 but there is no sinfo: run tests/cluster/start_slurm.sh")
    proc = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%N %T"], capture_output=True, text=True
    )
    ready = [
        line.split()[0]
        for line in proc.stdout.splitlines()
        if re.search(r" (idle|mixed|allocated)\s*$", line)
    ]
    if proc.returncode != 0 or not ready:
        pytest.fail(f"COMPFAIR_SLURM=1 but no SLURM node is ready:\n{proc.stdout}{proc.stderr}")
    return ready[0]


@pytest.fixture(scope="module")
def slurm_run(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The smoke preset run through sbatch; returns its directory and output."""
    workdir = scratch(tmp_path_factory, "smoke-slurm")
    output = run_snakemake(
        workdir,
        "--workflow-profile",
        SLURM_PROFILE,
        "--set-resources",
        *CPU_ONLY,
        # The profile's 40 s before the first status check suits a busy site;
        # smoke jobs take seconds.
        "--slurm-init-seconds-before-status-checks",
        "2",
        # Keep the log of every job, not only the failed ones, as evidence.
        "--slurm-keep-successful-logs",
    )
    return workdir, output


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The same preset on this machine, with the single-machine profile."""
    workdir = scratch(tmp_path_factory, "smoke-local")
    output = run_snakemake(workdir, "--workflow-profile", str(REPO / "profiles" / "default"))
    return workdir, output


def jobs_run(output: str) -> Counter:
    """Jobs per rule that Snakemake started, from its output.

    Read from what ran rather than from a dry run: behind a checkpoint
    (prompt shards) a dry run cannot know every job. Targets without a script
    (`all`) run inside Snakemake itself, on any executor, so they are left out.
    """
    counts = Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", output, re.M))
    counts.pop("all", None)
    return counts


def test_model_rules_ask_for_a_gpu() -> None:
    assert set(gpu_rules()) >= {
        "finetune_teacher",
        "distill_student",
        "generate_continuations",
        "score_continuations",
    }


def test_a_gpu_request_on_a_cluster_without_gpus_fails_at_once(
    cluster: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Without the CPU-only site setting, sbatch refuses the first GPU job, and says why."""
    workdir = scratch(tmp_path_factory, "smoke-gpu")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        SMOKE,
        "--workflow-profile",
        SLURM_PROFILE,
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--retries",
        "0",
        "--until",
        "evaluate_model",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    assert "--gpus=1" in output, output[-4000:]
    assert "Invalid generic resource" in output, output[-4000:]
    assert not list((workdir / "results" / "smoke" / "eval").rglob("*.json"))


def test_the_slurm_profile_alone_is_in_effect(slurm_run: tuple[Path, str]) -> None:
    """profiles/default must not be layered over the cluster settings."""
    _, output = slurm_run
    said = "for setting default command line arguments"
    used = [line for line in output.splitlines() if said in line]
    assert used, "Snakemake did not say which profiles it used"
    assert "profiles/slurm" in used[0], used[0]
    assert "profiles/default" not in used[0], used[0]


def test_every_job_went_through_sbatch(
    slurm_run: tuple[Path, str], local_run: tuple[Path, str]
) -> None:
    workdir, output = slurm_run
    expected_jobs = jobs_run(local_run[1])
    assert expected_jobs, "the local run started no jobs"
    assert jobs_run(output) == expected_jobs, "SLURM and local runs ran different jobs"
    # One log per sbatch job, written by slurmd as
    # .snakemake/slurm_logs/rule_<rule>/[<wildcards>/]<jobid>.log; a retried job leaves two.
    log_dir = workdir / ".snakemake" / "slurm_logs"
    logs = sorted(log_dir.glob("rule_*/**/*.log"))
    rule_of = {log: log.relative_to(log_dir).parts[0].removeprefix("rule_") for log in logs}
    per_rule = Counter(rule_of.values())
    assert per_rule == expected_jobs, (
        f"SLURM job logs per rule {dict(per_rule)} != jobs {dict(expected_jobs)}"
    )

    job_ids = {log.stem for log in logs}
    assert all(j.isdigit() for j in job_ids), job_ids
    assert len(job_ids) == len(logs), "two jobs share a SLURM job id"
    for log, rule in rule_of.items():
        text = log.read_text()
        assert re.search(rf"^(rule|checkpoint) {rule}:", text, re.M), f"{log} is not {rule}"
        assert "Finished jobid" in text, f"{log} did not finish"

    # slurmctld itself knows these jobs, under the run's name, as completed.
    # (squeue forgets finished jobs after MinJobAge: an hour on the test
    # cluster, maybe less elsewhere, so jobs it no longer lists are not
    # held against the run.)
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    queue = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={run_id}", "--format=%i|%T"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = dict(line.split("|") for line in queue.split())
    assert states, f"squeue knows no job named {run_id}"
    assert set(states) <= job_ids, f"jobs without a log: {set(states) - job_ids}"
    assert set(states.values()) == {"COMPLETED"}, states


def test_metrics_are_identical_to_a_local_run(
    slurm_run: tuple[Path, str], local_run: tuple[Path, str]
) -> None:
    table = "results/smoke/tables/metrics.csv"
    assert (slurm_run[0] / table).read_bytes() == (local_run[0] / table).read_bytes()
