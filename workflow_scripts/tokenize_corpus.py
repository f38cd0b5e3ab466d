"""Rule tokenize_corpus: one split tokenised by the base model's tokenizer."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.data import tokenize_corpus
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
tokenize_corpus(
    Path(snakemake.input.corpus),
    Path(snakemake.input.model),
    Path(snakemake.output[0]),
    max_tokens=snakemake.params.max_tokens,
)
