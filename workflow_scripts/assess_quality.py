"""Rule assess_quality: quality guards of one model's continuations."""

from pathlib import Path

from compfair.io import setup_logging
from compfair.quality import quality_report

setup_logging(snakemake.log[0], threads=snakemake.threads)
quality_report(
    Path(snakemake.input.generations),
    Path(snakemake.input.teacher),
    Path(snakemake.output[0]),
    batch_size=snakemake.params.batch_size,
)
