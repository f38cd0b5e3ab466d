"""Rule prune_model: global magnitude pruning of the teacher at one sparsity."""

from pathlib import Path

from compfair.io import setup_logging
from compfair.prune import prune_model

setup_logging(snakemake.log[0], threads=snakemake.threads)
prune_model(
    Path(snakemake.input[0]),
    Path(snakemake.output[0]),
    sparsity=float(snakemake.wildcards.sparsity),
    tolerance=snakemake.params.tolerance,
)
