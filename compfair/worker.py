"""A fork server that runs rule scripts with torch and transformers already imported.

Every model job of the workflow is a new Python process, and importing torch, transformers and
compfair costs it 4-6 s on a CPU: more than most jobs of the smoke preset compute, and minutes of
the default study. A rule script starts with :func:`hand_over`. When a worker of the same Python
and the same compfair source is listening, the script sends it its path (the file Snakemake wrote,
preamble included), its working directory, environment, arguments and standard streams (the file
descriptors themselves, over a Unix socket); the worker forks a child that runs the script exactly
as ``python <script>`` would, from a process that has imported everything already, and reports its
exit status, which the script exits with. When no worker is listening, the script starts one in the
background (the workflow's ``onstart`` starts one too) and waits for it up to ``WAIT_S`` seconds,
then runs itself as before. One file per step, logs and exit codes
are unchanged; a job's results do not depend on where it ran (the tests compare them byte for byte).

The child dies with the job: a thread watches the connection, and the child exits when the script
that handed over is gone (killed by Snakemake, Ctrl-C or a signal). The worker imports and listens
only after it holds a lock, so two do not start at once; it exits after ``IDLE_S`` seconds without
jobs. Off where a fork server is wrong or useless: outside Linux, inside a SLURM job (one job a
node allocation), and when ``COMPFAIR_WORKER=0``. Snakemake's ``benchmark:`` memory then counts
the handing-over process only; the child logs its own peak resident memory (set
``COMPFAIR_WORKER=0`` to measure memory with Snakemake).

This is written here because no library runs Snakemake rule scripts in a pre-imported process
(Snakemake's own ``run:`` blocks share one interpreter and its global state between jobs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

IDLE_S = 120.0  # a worker without jobs for this long exits
WAIT_S = 30.0  # a job waits this long for a worker that is starting, then runs itself
START_S = 5.0  # a worker that has not taken its lock this long after its start has failed
# A Unix socket's path has at most 108 bytes on Linux (104 on macOS); longer: no worker.
MAX_SOCKET_PATH = 100
# Imported once by the worker, before it listens: whatever the rule scripts import.
WARM_MODULES = (
    "torch",
    "transformers",
    "pandas",
    "snakemake.script",
    "compfair.generate",
    "compfair.perplexity",
    "compfair.intrinsic",
    "compfair.compression",
    "compfair.quality",
    "compfair.training",
    "compfair.distill",
    "compfair.tables.build",
    "compfair.scoring",
    "matplotlib.pyplot",
    "compfair.plots",
)
# Read at import time by torch, transformers, huggingface_hub and the BLAS libraries (offline
# mode, cache folders, tokens, devices, thread pools, the hash seed): a job whose values differ
# needs a worker of its own. Names are prefixes.
IMPORT_ENV = (
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "TORCH",
    "PYTORCH_",
    "CUDA_",
    "TOKENIZERS_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "XDG_CACHE_HOME",
    "HOME",
    "PYTHONHASHSEED",
)
# What Snakemake sets in a job's environment to the job's thread count (snakemake/shell.py):
# jobs of different thread counts need different workers, which warm_up starts ahead.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# Device files whose presence means a GPU this process could use (NVIDIA, AMD ROCm).
GPU_DEVICES = ("/dev/nvidiactl", "/dev/kfd")
# The child's last log line; compfair.job_timings reads the peak back from the job's log.
PEAK_PREFIX = "worker child: peak resident memory "
_HEADER = struct.Struct("!Q")
_STATUS = struct.Struct("!i")
_ACK = b"A"
_in_child = False


def gpu_visible() -> bool:
    """Whether a GPU may be used here (its driver's device file exists and
    ``CUDA_VISIBLE_DEVICES`` does not hide every device)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(os.path.exists(device) for device in GPU_DEVICES)


def enabled() -> bool:
    """Whether rule scripts hand over to a worker here (see the module docstring).

    Off with a GPU visible: CUDA cannot be used in a process forked after it was
    initialised, and a model job on a GPU spends its time on the device, not importing.
    """
    return (
        os.environ.get("COMPFAIR_WORKER", "1") != "0"
        and "COMPFAIR_WORKER_CHILD" not in os.environ
        and sys.platform == "linux"
        and "SLURM_JOB_ID" not in os.environ
        and hasattr(socket, "send_fds")
        and not gpu_visible()
    )


def source_key(package: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """A hash of this interpreter, of the package's real location and of every file under it
    (source and data: path, size and mtime), and of the environment variables the worker's
    imports read once (:data:`IMPORT_ENV`). Two copies of one commit, made with ``cp -a`` or
    extracted twice, have different keys: they live in different folders."""
    package = (package or Path(__file__).parent).resolve()
    env = os.environ if env is None else env
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{sys.executable};{package};".encode())
    for name in sorted(env):
        if name.startswith(IMPORT_ENV):
            digest.update(f"{name}={env[name]};".encode())
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            stat = path.stat()
            relative = path.relative_to(package)
            digest.update(f"{relative}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def socket_path(env: Mapping[str, str] | None = None) -> Path:
    """The worker's socket for this interpreter, source and environment (``env``, default this
    process's), in a directory only its user reads."""
    root = Path(
        os.environ.get("COMPFAIR_WORKER_DIR")
        or Path(tempfile.gettempdir()) / f"compfair-worker-{os.getuid()}"
    )
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root / f"{source_key(env=env)}.sock"


def hand_over(wait_s: float = WAIT_S) -> None:
    """Run the calling rule script in a worker and exit with its status; else return.

    Call it first thing in a rule script. Without a listening worker it starts one (unless one
    is warming up already) and waits up to ``wait_s`` seconds for it: importing here would take
    as long. It returns, and the script runs in this process, when workers are off, inside a
    worker's child, or when no worker took the job.
    """
    if _in_child or not enabled():
        return
    main = sys.modules["__main__"]
    script = getattr(main, "__real_file__", None) or getattr(main, "__file__", None)
    if script is None:
        return
    path = socket_path()
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        return
    conn = _connect(path, wait_s)
    if conn is None:
        return
    request = {"script": str(script), "cwd": os.getcwd(), "env": dict(os.environ)}
    request["argv"] = list(sys.argv)
    payload = json.dumps(request).encode()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        socket.send_fds(conn, [_HEADER.pack(len(payload))], [0, 1, 2])
        conn.sendall(payload)
        started = _recv_exact(conn, 1) == _ACK
    except OSError:
        started = False
    if not started:  # the worker closed before its child took the job (an idle exit)
        conn.close()
        return
    status = _recv_exact(conn, _STATUS.size)
    if len(status) < _STATUS.size:
        print("compfair worker: the job's process ended without an exit status", file=sys.stderr)
        sys.exit(1)
    sys.exit(_STATUS.unpack(status)[0])


def _connect(path: Path, wait_s: float) -> socket.socket | None:
    """A connection to the worker of ``path``, starting one if needed; None after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    spawned_at = None
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            return conn
        except OSError:
            conn.close()
        now = time.monotonic()
        if now >= deadline:
            return None
        if not _locked(path):  # no worker is warming up
            if spawned_at is None:
                start_worker(path)
                spawned_at = now
            elif now - spawned_at > START_S:  # the one started never took the lock: it failed
                return None
        time.sleep(0.1)


def job_env(threads: int) -> dict[str, str]:
    """This process's environment as Snakemake passes it to a job of ``threads`` threads."""
    return {**os.environ, **dict.fromkeys(THREAD_ENV, str(threads))}


def warm_up(thread_counts: Iterable[int] = (1,)) -> None:
    """Start, in the background, the workers that jobs of these thread counts will hand over
    to, when workers are on (the workflow's ``onstart``: they import while the first jobs are
    scheduled). Snakemake sets a job's thread count in its environment, which the worker's key
    covers, so each count has its own worker."""
    if not enabled():
        return
    for threads in sorted(set(thread_counts)):
        path = socket_path(job_env(threads))
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            start_worker(path)


def start_worker(path: Path) -> None:
    """Start a worker for ``path`` in the background unless one holds its lock already."""
    if _locked(path):
        return
    out = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the child
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.Popen(
        [sys.executable, "-m", "compfair.worker", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        cwd="/",
        env=env,
        start_new_session=True,
    )
    out.close()


def _locked(path: Path) -> bool:
    import fcntl

    with open(path.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def serve(path: Path, idle_s: float = IDLE_S, warm: Sequence[str] = WARM_MODULES) -> None:
    """Hold the lock of ``path``, import ``warm``, then fork a child per request until idle."""
    import fcntl
    import importlib

    lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 - held for the worker's life
    for attempt in range(5):  # a waiting job's probe holds the lock for an instant
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if attempt == 4:
                return
            time.sleep(0.05)
    for name in warm:
        try:
            importlib.import_module(name)
        except Exception as err:  # a module this environment lacks: its jobs import it
            print(f"compfair worker: not preloaded {name}: {err}", file=sys.stderr, flush=True)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(64)
    server.settimeout(1.0)
    children: set[int] = set()
    last = time.monotonic()
    try:
        while children or time.monotonic() - last < idle_s:
            children -= _reaped(children)
            if children:
                last = time.monotonic()
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            if _cuda_initialised():  # a forked child could not use CUDA: jobs run themselves
                conn.close()
                print("compfair worker: CUDA is initialised here; stopping", file=sys.stderr)
                break
            pid = os.fork()
            if pid == 0:
                server.close()
                _child(conn)  # never returns
            conn.close()
            children.add(pid)
    finally:
        path.unlink(missing_ok=True)
        server.close()


def _cuda_initialised() -> bool:
    """Whether this process has initialised CUDA (an import that touched the device)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _reaped(children: set[int]) -> set[int]:
    done = set()
    for pid in children:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            done.add(pid)
    return done


def _child(conn: socket.socket) -> None:
    """Run one handed-over script in this forked process; send its status and exit."""
    global _in_child
    import signal
    import threading

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    code = 1
    try:
        conn.settimeout(None)
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        request: dict[str, Any] = json.loads(_recv_exact(conn, _HEADER.unpack(header)[0]))
        conn.sendall(_ACK)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["COMPFAIR_WORKER_CHILD"] = "1"  # what the job starts runs in-process
        _as_a_fresh_process(request["script"], request["argv"])
        _in_child = True
        threading.Thread(target=_exit_with_caller, args=(conn,), daemon=True).start()
        code = _run_script(request["script"])
    except BaseException:  # noqa: BLE001 - reported to the job's stderr below
        import traceback

        traceback.print_exc()
    finally:
        _finish(conn, code)


def _as_a_fresh_process(script: str, argv: list[str]) -> None:
    """What ``python script`` would start with: argv, sys.path[0], temp dir, random seeds."""
    import random
    import tempfile as tempfile_module

    sys.argv = argv
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    tempfile_module.tempdir = None  # taken again from this job's TMPDIR
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def _run_script(script: str) -> int:
    import runpy
    import traceback

    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - the traceback a plain python run would print
        traceback.print_exc()
        code = 1
    return code


def _finish(conn: socket.socket, code: int) -> None:
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info("%s%.0f MB", PEAK_PREFIX, peak_mb)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing left to flush
            pass
    try:
        conn.sendall(_STATUS.pack(code))
    finally:
        os._exit(code)


def _exit_with_caller(conn: socket.socket) -> None:
    """End this child as soon as the process that handed the job over is gone."""
    while True:
        try:
            if not conn.recv(1):
                break
        except OSError:
            break
    os._exit(75)


if __name__ == "__main__":
    # Serve from the imported module, not from __main__: the scripts' own
    # `from compfair.worker import hand_over` must see this module's _in_child.
    from compfair.worker import serve as _serve

    _serve(Path(sys.argv[1]))
