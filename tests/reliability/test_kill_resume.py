"""Kill the smoke workflow at five points, rerun it, and get the same tables.

One scratch directory goes through: run -> SIGKILL (Snakemake and its jobs)
while the teacher is being fine-tuned, after its first checkpoint -> rerun ->
SIGKILL while a model is compressed -> rerun -> SIGKILL while continuations
are generated -> rerun -> SIGKILL while continuations are scored or a model's
intrinsic bias is evaluated -> rerun -> SIGKILL while the metrics are
aggregated -> rerun to the end. After every kill, every file under
``results/`` must be complete (the atomic writes promise it); at the end the
tables and the teacher's weights must be byte-identical to an uninterrupted
run's (the session's ``smoke_run``), and the rerun of the teacher must have
resumed from its checkpoint. The whole sequence costs about one extra smoke run.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from tests.workflow.conftest import REPO, SMOKE, SNAKEMAKE

pytestmark = pytest.mark.slow

SEED = 7  # presets/smoke.yaml
SECRET = "hf_reliabilityTestSecretToken0123456789"  # must never be written anywhere
ATTEMPT_TIMEOUT_S = 1200


# --------------------------------------------------------------------------- running and killing


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_TOKEN": SECRET,
        "HUGGING_FACE_HUB_TOKEN": SECRET,
    }


def _command(workdir: Path, *args: str) -> list[str]:
    return [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        # The reference run's thread counts: they fix the floating-point reduction order.
        "--cores",
        "2",
        "--configfile",
        SMOKE,
        *args,
    ]


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append((int(entry.name), cmdline))
    return members


def script_running(rule: str | tuple[str, ...], for_s: float) -> Callable[[int, Path], bool]:
    """Kill point: the script of ``rule`` (or of one of several) has run for ``for_s`` seconds."""
    rules = (rule,) if isinstance(rule, str) else rule
    seen: dict[int, float] = {}

    def check(pgid: int, workdir: Path) -> bool:
        now = time.monotonic()
        for pid, cmd in _group_members(pgid):
            if any(f".{r}.py" in cmd for r in rules):
                if now - seen.setdefault(pid, now) >= for_s:
                    return True
        return False

    return check


def generating(pgid: int, workdir: Path) -> bool:
    """Kill point: a generation job has loaded its model and not yet finished sampling."""
    for log in workdir.glob("logs/smoke/generate_continuations/**/*.log"):
        text = log.read_text(errors="replace")
        if "compfair.generate: generating" in text and "compfair.generate: generated" not in text:
            return True
    return False


def teacher_checkpointed(pgid: int, workdir: Path) -> bool:
    """Kill point: fine-tuning has written a checkpoint and not yet the teacher."""
    return any(workdir.glob(f"results/smoke/checkpoints/teacher-seed{SEED}-*/last/state.pt"))


@dataclass
class Kill:
    point: str
    elapsed_s: float
    hidden: list[str] = field(default_factory=list)  # temporary siblings found after the kill
    incomplete: list[str] = field(default_factory=list)  # outputs Snakemake marked incomplete
    problems: list[str] = field(default_factory=list)  # visible files that do not parse
    teacher_log: bytes = b""  # the teacher's job log as the kill left it
    teacher_done: bool = False


def run_until(workdir: Path, point: str, condition: Callable[[int, Path], bool], out: Path) -> Kill:
    """Start the workflow in its own session and SIGKILL its whole group when ``condition`` holds."""
    start = time.monotonic()
    with open(out, "w") as fh:
        proc = subprocess.Popen(
            _command(workdir),
            cwd=REPO,
            env=_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pgid = proc.pid
    try:
        while not condition(pgid, workdir):
            if proc.poll() is not None:
                raise AssertionError(
                    f"the workflow ended (rc {proc.returncode}) before the kill point '{point}':\n"
                    + out.read_text()[-4000:]
                )
            if time.monotonic() - start > ATTEMPT_TIMEOUT_S:
                raise AssertionError(f"kill point '{point}' not reached in {ATTEMPT_TIMEOUT_S} s")
            time.sleep(0.005)
        os.killpg(pgid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(pgid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_members(pgid), f"processes survived the kill: {_group_members(pgid)}"
    teacher_log = workdir / f"logs/smoke/finetune_teacher/seed-{SEED}.log"
    return Kill(
        point=point,
        elapsed_s=round(time.monotonic() - start, 1),
        hidden=[str(p.relative_to(workdir)) for p in hidden_files(workdir / "results" / "smoke")],
        incomplete=incomplete_markers(workdir),
        problems=unreadable_outputs(workdir / "results" / "smoke"),
        teacher_log=teacher_log.read_bytes() if teacher_log.is_file() else b"",
        teacher_done=(workdir / f"results/smoke/models/seed-{SEED}/teacher").exists(),
    )


def unlock(workdir: Path) -> None:
    """A SIGKILLed Snakemake leaves its lock behind."""
    proc = subprocess.run(
        _command(workdir, "--unlock"), cwd=REPO, env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


# --------------------------------------------------------------------------- what a kill leaves


def hidden_files(results: Path) -> list[Path]:
    """Temporary siblings of atomic_path / atomic_dir (names start with '.'), outermost only."""
    found = [p for p in results.rglob(".*") if p.name != ".snakemake_timestamp"]
    return sorted(p for p in found if not any(q in p.parents for q in found))


def incomplete_markers(workdir: Path) -> list[str]:
    folder = workdir / ".snakemake" / "incomplete"
    names = []
    for marker in sorted(folder.glob("*")) if folder.is_dir() else []:
        try:
            names.append(base64.b64decode(marker.name, altchars=b"-_").decode())
        except ValueError:
            names.append(marker.name)
    return names


def _visible(path: Path, results: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(results).parts)


def unreadable_outputs(results: Path) -> list[str]:
    """Every visible file under ``results`` that does not parse, and every incomplete model folder."""
    from safetensors import safe_open

    problems = []
    for path in sorted(p for p in results.rglob("*") if p.is_file() and _visible(p, results)):
        try:
            if path.suffix == ".jsonl":
                for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if line.strip():
                        assert isinstance(json.loads(line), dict), f"line {i} is not an object"
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".csv":
                assert len(pd.read_csv(path).columns) > 0
            elif path.suffix == ".tsv":
                pd.read_csv(path, sep="\t")
            elif path.suffix == ".safetensors":
                with safe_open(str(path), "pt") as fh:
                    for key in fh.keys():
                        fh.get_tensor(key)
            elif path.suffix == ".png":
                from PIL import Image

                with Image.open(path) as image:
                    image.verify()
            elif path.suffix == ".pt":
                import torch

                torch.load(path, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report every kind of damage
            problems.append(f"{path.relative_to(results)}: {type(exc).__name__}: {exc}")
    models = [
        results / "models" / "base",
        *results.glob("models/seed-*/*"),
        *results.glob("models/reference/*"),
    ]
    for folder in models:
        if folder.is_dir() and _visible(folder, results):
            missing = [
                f
                for f in ("config.json", "model.safetensors", "provenance.json")
                if not (folder / f).is_file()
            ]
            if missing:
                problems.append(
                    f"{folder.relative_to(results)}: model folder lacks {', '.join(missing)}"
                )
    for folder in results.glob("checkpoints/*/last"):
        missing = [
            f for f in ("model.safetensors", "state.pt", "run.json") if not (folder / f).is_file()
        ]
        if missing:
            problems.append(f"{folder.relative_to(results)}: checkpoint lacks {', '.join(missing)}")
    return problems


# --------------------------------------------------------------------------- the sequence


@dataclass
class KilledRun:
    workdir: Path
    kills: list[Kill]
    teacher_rerun_log: str
    final_seconds: float


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> KilledRun:
    base = tmp_path_factory.mktemp("killed")
    workdir = base / "work"
    workdir.mkdir()
    points = [
        ("finetune_teacher, after its first checkpoint", teacher_checkpointed),
        ("compress_model, mid-job", script_running("compress_model", 0.5)),
        ("generate_continuations, while sampling", generating),
        (
            "scoring or the model evaluation, mid-job",
            script_running(("score_continuations", "evaluate_model"), 0.5),
        ),
        ("aggregate_metrics, mid-job", script_running("aggregate_metrics", 1.0)),
    ]
    kills: list[Kill] = []
    for i, (point, condition) in enumerate(points):
        if i:
            unlock(workdir)
        kills.append(run_until(workdir, point, condition, base / f"attempt-{i}.out"))
        k = kills[-1]
        print(
            f"\nkill {i + 1} ({k.point}) after {k.elapsed_s} s: hidden {k.hidden}, incomplete {k.incomplete}, problems {k.problems}"
        )
    teacher_log = workdir / f"logs/smoke/finetune_teacher/seed-{SEED}.log"
    unlock(workdir)
    start = time.monotonic()
    final = subprocess.run(_command(workdir), cwd=REPO, env=_env(), capture_output=True, text=True)
    assert final.returncode == 0, (
        f"the final rerun failed:\n{final.stdout[-4000:]}\n{final.stderr[-8000:]}"
    )
    # The rerun's part of the teacher's log, whether Snakemake emptied the log or appended to it.
    before, after = kills[0].teacher_log, teacher_log.read_bytes()
    rerun_part = after[len(before) :] if before and after.startswith(before) else after
    # SIGKILL during a write would leave the writer's hidden temporary behind (nothing can
    # remove it); it is never read, and a rerun writes a new one. Reported, not asserted.
    leftovers = [str(p.relative_to(workdir)) for p in hidden_files(workdir / "results" / "smoke")]
    print(f"\nafter the final rerun: hidden leftovers {leftovers or 'none'}")
    return KilledRun(
        workdir, kills, rerun_part.decode(errors="replace"), round(time.monotonic() - start, 1)
    )


def test_kills_landed_where_intended(killed_run: KilledRun) -> None:
    first = killed_run.kills[0]
    assert not first.teacher_done, "the first kill came after the teacher was saved"
    assert f"results/smoke/models/seed-{SEED}/teacher" in first.incomplete
    compress = killed_run.kills[1]
    assert any(p.startswith(f"results/smoke/models/seed-{SEED}/") for p in compress.incomplete), (
        compress
    )
    scoring = killed_run.kills[3]
    assert any(
        p.startswith(("results/smoke/scores/", "results/smoke/intrinsic/"))
        for p in scoring.incomplete
    ), scoring
    aggregate = killed_run.kills[4]
    assert "results/smoke/tables/metrics.csv" in aggregate.incomplete


def test_no_half_written_output_is_visible_after_a_kill(killed_run: KilledRun) -> None:
    for kill in killed_run.kills:
        assert not kill.problems, f"after the kill in {kill.point}: {kill.problems}"
    # Whatever a kill leaves is an atomic writer's hidden temporary, which no rule reads:
    # ".<name>.<random><suffix>" (atomic_path) or ".<name>.tmp-<random>" (atomic_dir).
    temporary = re.compile(r"^\..+\.(tmp-|old-)?[a-z0-9_]{8}(\.[A-Za-z0-9]+)?$")
    for kill in killed_run.kills:
        strays = [name for name in kill.hidden if not temporary.match(Path(name).name)]
        assert not strays, f"after the kill in {kill.point}: unexpected hidden files {strays}"


def test_teacher_resumes_from_its_checkpoint(killed_run: KilledRun) -> None:
    log = killed_run.teacher_rerun_log
    assert "resuming from results/smoke/checkpoints/teacher-seed7-" in log, log[-3000:]
    assert "/last at step " in log


def test_killed_and_resumed_run_gives_identical_tables(
    killed_run: KilledRun, smoke_run: Path
) -> None:
    work = killed_run.workdir
    for table in (
        "metrics.csv",
        "metrics_per_seed.csv",
        "comparisons.csv",
        "models.csv",
        "scorer_calibration.csv",
    ):
        ours = (work / "results/smoke/tables" / table).read_bytes()
        assert ours == (smoke_run / "results/smoke/tables" / table).read_bytes(), f"{table} differs"
    for model in ("teacher", "kd-0.50", "magnitude-0.50"):
        weights = f"results/smoke/models/seed-{SEED}/{model}/model.safetensors"
        assert (work / weights).read_bytes() == (smoke_run / weights).read_bytes(), (
            f"{model} weights differ"
        )
    assert not list(work.glob("results/smoke/checkpoints/*/last")), (
        "checkpoints kept after training finished"
    )


def test_token_in_the_environment_is_written_nowhere(killed_run: KilledRun) -> None:
    leaks = []
    for path in killed_run.workdir.rglob("*"):
        if path.is_file() and SECRET.encode() in path.read_bytes():
            leaks.append(str(path.relative_to(killed_run.workdir)))
    assert not leaks, f"HF_TOKEN written to {leaks}"
