"""Rule gather_job_timings: every job's time and memory in one table."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.job_timings import gather_job_timings

setup_logging(snakemake.log[0])
gather_job_timings(
    Path(snakemake.params.bench_dir),
    Path(snakemake.output[0]),
    log_dir=Path(snakemake.params.log_dir),
)
