"""Rule score_continuations: toxicity and VADER sentiment of every continuation."""

from pathlib import Path

from compfair.io import setup_logging
from compfair.scoring import score_generations

setup_logging(snakemake.log[0])
score_generations(
    Path(snakemake.input[0]),
    Path(snakemake.output[0]),
    scorer=snakemake.params.scorer,
    scorer_options=dict(snakemake.params.options),
)
