"""Rule evaluate_intrinsic_bias: every enabled intrinsic benchmark's scores of one model."""

from pathlib import Path

from compfair.compression import load_plugins
from compfair.intrinsic import evaluate_intrinsic_bias, resolve_paths
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
params = snakemake.params
root = Path(snakemake.scriptdir).parent
load_plugins(params.plugins, root)  # a plug-in may register a benchmark
evaluate_intrinsic_bias(
    Path(snakemake.input.model),
    Path(snakemake.output.table),
    specs=resolve_paths(params.specs, root),
    batch_size=params.batch_size,
    seed=params.seed,
    n_boot=params.n_boot,
    confidence=params.confidence,
    items_csv=Path(snakemake.output.per_item),
)
