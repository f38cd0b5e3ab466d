"""Rule assess_quality: quality guards of one model's continuations, every prompt set."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.quality import quality_report

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
quality_report(
    dict(zip(snakemake.params.promptsets, map(Path, snakemake.input.generations), strict=True)),
    Path(snakemake.input.teacher),
    Path(snakemake.output[0]),
    batch_size=snakemake.params.batch_size,
    teacher_samples=snakemake.params.teacher_samples,
    teacher_prompts=snakemake.params.teacher_prompts,
)
