"""The fork server that runs rule scripts pre-imported (compfair/worker.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compfair import worker

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker runs on Linux only")


def _wait(condition, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _private_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Workers on, in a private socket directory, as on a machine without a GPU."""
    monkeypatch.setenv("COMPFAIR_WORKER_DIR", str(tmp_path / "sock"))
    monkeypatch.delenv("COMPFAIR_WORKER", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(worker, "GPU_DEVICES", ())
    return worker.socket_path()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen]:
    """A worker without preloaded modules, listening in a private directory."""
    path = _private_socket(tmp_path, monkeypatch)
    code = f"from pathlib import Path; from compfair.worker import serve; serve(Path({str(path)!r}), idle_s=60, warm=())"
    proc = subprocess.Popen([sys.executable, "-c", code])
    assert _wait(path.exists), "the worker did not start listening"
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "job.py"
    header = "from compfair.worker import hand_over\nhand_over()\nimport os, sys\n"
    path.write_text(header + textwrap.dedent(body))
    return path


def test_a_handed_over_script_runs_in_a_child_of_the_worker_with_the_callers_cwd_env_and_streams(
    server: subprocess.Popen, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        """
        print("parent", os.getppid(), "cwd", os.getcwd(), "env", os.environ["JOB_VALUE"], "argv", sys.argv[1:])
        print("to stderr", file=sys.stderr)
        sys.exit(3)
        """,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "JOB_VALUE": "forty-two"}
    proc = subprocess.run(
        [sys.executable, str(script), "a", "b"], cwd=work, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.split() == [
        "parent",
        str(server.pid),
        "cwd",
        str(work),
        "env",
        "forty-two",
        "argv",
        "['a',",
        "'b']",
    ]
    assert "to stderr" in proc.stderr


def test_an_exception_in_the_child_gives_status_1_and_its_traceback(
    server: subprocess.Popen, tmp_path: Path
) -> None:
    script = _script(tmp_path, 'raise ValueError("bad input in job")\n')
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "ValueError: bad input in job" in proc.stderr
    assert "Traceback" in proc.stderr


def test_the_child_dies_with_the_process_that_handed_over(
    server: subprocess.Popen, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    script = _script(
        tmp_path,
        f"""
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        import time
        time.sleep(60)
        """,
    )
    proc = subprocess.Popen([sys.executable, str(script)])
    assert _wait(lambda: pid_file.exists() and pid_file.read_text() != "")
    child = int(pid_file.read_text())
    assert child != proc.pid  # it ran in the worker's child, not in the caller
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        # a finished child stays a zombie until the worker reaps it (within a second)
        return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"

    assert _wait(gone, timeout=10), "the child outlived the job"


def test_without_a_worker_the_script_runs_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPFAIR_WORKER", "0")
    script = _script(tmp_path, "print(os.getpid())\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert int(out) == proc.pid


def test_a_second_worker_for_the_same_socket_leaves_at_once(
    server: subprocess.Popen, tmp_path: Path
) -> None:
    path = worker.socket_path()
    started = time.monotonic()
    worker.serve(path, idle_s=60, warm=())  # the lock is held: returns without serving
    assert time.monotonic() - started < 5
    assert path.exists() and server.poll() is None


def test_the_socket_changes_with_the_source(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COMPFAIR_WORKER_DIR", str(tmp_path))
    before = worker.source_key()
    assert worker.source_key() == before
    source = Path(worker.__file__)
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert worker.source_key() != before
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert worker.source_key() == before


def test_workers_are_off_in_slurm_jobs_and_when_disabled(monkeypatch) -> None:
    monkeypatch.setattr(worker, "GPU_DEVICES", ())  # as on a machine without a GPU
    monkeypatch.delenv("COMPFAIR_WORKER", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert worker.enabled() == hasattr(__import__("socket"), "send_fds")
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    assert not worker.enabled()
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("COMPFAIR_WORKER", "0")
    assert not worker.enabled()


def test_a_worker_that_closes_before_taking_the_job_leaves_it_to_the_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker ending its idle wait just as a job connects: the job runs in its own process."""
    import socket
    import threading

    path = _private_socket(tmp_path, monkeypatch)
    lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 - "a worker is up": none is spawned
    import fcntl

    fcntl.flock(lock, fcntl.LOCK_EX)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    accepted = []

    def close_at_once() -> None:
        conn, _ = listener.accept()
        accepted.append(True)
        conn.close()

    thread = threading.Thread(target=close_at_once, daemon=True)
    thread.start()
    script = _script(tmp_path, "print(os.getpid())\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    thread.join(timeout=5)
    listener.close()
    lock.close()
    assert accepted and proc.returncode == 0
    assert int(out) == proc.pid


def test_a_worker_that_never_starts_is_given_up_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A started worker that dies before taking its lock: the job stops waiting after START_S."""
    monkeypatch.setattr(worker, "START_S", 0.3)
    starts = []
    monkeypatch.setattr(worker, "start_worker", lambda path: starts.append(path))
    path = tmp_path / "w.sock"
    began = time.monotonic()
    assert worker._connect(path, wait_s=30.0) is None
    assert time.monotonic() - began < 5.0
    assert starts == [path]  # started once, not once a poll


def test_a_socket_path_too_long_for_unix_sockets_means_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 120)
    monkeypatch.setenv("COMPFAIR_WORKER_DIR", str(deep))
    monkeypatch.delenv("COMPFAIR_WORKER", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    script = _script(tmp_path, "print(os.getpid())\n")
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert int(out) == proc.pid
    assert time.monotonic() - began < 10.0
    assert not list(deep.glob("*.log"))  # no worker was started


def test_the_socket_changes_with_what_the_imports_read_from_the_environment(monkeypatch) -> None:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: another value, another worker."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    plain = worker.source_key()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = worker.source_key()
    monkeypatch.setenv("SOME_JOB_VARIABLE", "x")  # not read at import: the same worker
    assert offline != plain and worker.source_key() == offline


def test_two_copies_of_one_commit_have_workers_of_their_own(tmp_path: Path) -> None:
    """Copies with the same relative paths, sizes and times (cp -a) differ by their folder; a
    data file of the package (not only its .py files) changes the key too."""
    package = Path(worker.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__")
    first = shutil.copytree(package, tmp_path / "a" / "compfair", ignore=ignore)
    second = shutil.copytree(package, tmp_path / "b" / "compfair", ignore=ignore)
    assert worker.source_key(first) == worker.source_key(first)
    assert worker.source_key(first) != worker.source_key(second)
    before = worker.source_key(first)
    templates = first / "resources" / "audit_templates.txt"
    stat = templates.stat()
    os.utime(templates, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert worker.source_key(first) != before


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "MKL_CBWR", "HOME", "PYTHONHASHSEED"])
def test_the_socket_changes_with_the_thread_pools_home_and_hash_seed(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "1")
    one = worker.source_key()
    monkeypatch.setenv(name, "2")
    assert worker.source_key() != one


def test_workers_are_off_where_a_gpu_is_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPFAIR_WORKER", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(worker, "GPU_DEVICES", (str(Path(worker.__file__)),))  # exists
    assert worker.gpu_visible() and not worker.enabled()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # every device hidden
    assert not worker.gpu_visible()
    monkeypatch.setattr(worker, "GPU_DEVICES", ("/nonexistent/nvidiactl",))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert not worker.gpu_visible()
    assert worker.enabled() == hasattr(__import__("socket"), "send_fds")


def test_a_worker_with_cuda_initialised_stops_and_the_job_runs_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA cannot be used after a fork: a worker whose imports initialised it takes no job."""
    path = _private_socket(tmp_path, monkeypatch)
    code = (
        "from pathlib import Path; import compfair.worker as w; "
        "w._cuda_initialised = lambda: True; "
        f"w.serve(Path({str(path)!r}), idle_s=60, warm=())"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    assert _wait(path.exists), "the worker did not start listening"
    script = _script(tmp_path, "print(os.environ.get('COMPFAIR_WORKER_CHILD', 'own process'))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert proc.wait(timeout=20) == 0
    assert "CUDA is initialised here; stopping" in proc.stderr.read()
    assert out.stdout.strip() == "own process"


def test_warm_up_starts_the_workers_of_the_jobs_thread_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's environment carries its thread count (Snakemake sets OMP_NUM_THREADS and the
    like): warm_up starts one worker per count, at the sockets those jobs will look for."""
    _private_socket(tmp_path, monkeypatch)
    started: list[Path] = []
    monkeypatch.setattr(worker, "start_worker", started.append)
    worker.warm_up([2, 1, 2])
    for name in worker.THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    seen = []
    for threads in (1, 2):
        for name in worker.THREAD_ENV:  # as Snakemake's shell() sets them for a job
            monkeypatch.setenv(name, str(threads))
        seen.append(worker.socket_path())
    assert started == seen and seen[0] != seen[1]
