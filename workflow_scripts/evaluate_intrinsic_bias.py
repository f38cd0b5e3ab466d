"""Rule evaluate_intrinsic_bias: CrowS-Pairs and StereoSet scores of one model."""

from pathlib import Path

from compfair.intrinsic import evaluate_intrinsic_bias
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.threads)
params = snakemake.params
evaluate_intrinsic_bias(
    Path(snakemake.input.model),
    Path(snakemake.output[0]),
    crows=params.crows,
    stereoset=params.stereoset,
    batch_size=params.batch_size,
    seed=params.seed,
    n_boot=params.n_boot,
)
