"""Rule prepare_prompts: one prompt set in the workflow's prompt format."""

from pathlib import Path

from compfair.data import prepare_prompts
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
prepare_prompts(
    snakemake.wildcards.promptset,
    snakemake.params.spec,
    Path(snakemake.output[0]),
    seed=snakemake.params.seed,
    repo_root=Path(snakemake.scriptdir).parent,
)
