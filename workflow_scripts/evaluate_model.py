"""Rule evaluate_model: held-out perplexity, size and measured sparsity of a model."""

from pathlib import Path

from compfair.io import setup_logging
from compfair.perplexity import evaluate_model

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
settings = snakemake.params.settings
evaluate_model(
    Path(snakemake.input.model),
    Path(snakemake.input.tokens),
    Path(snakemake.output[0]),
    model_id=Path(snakemake.wildcards.modelpath).name,
    seq_len=settings["seq_len"],
    max_tokens=settings["max_tokens"],
    batch_size=settings["batch_size"],
)
