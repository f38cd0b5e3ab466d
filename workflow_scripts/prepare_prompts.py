"""Rule prepare_prompts: one prompt set in the workflow's prompt format."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from pathlib import Path

from compfair.compression import load_plugins
from compfair.data import prepare_prompts
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
repo_root = Path(snakemake.scriptdir).parent
# A prompt source may come from a plug-in file: this job is a fresh process.
load_plugins(snakemake.params.plugins, repo_root)
prepare_prompts(
    snakemake.wildcards.promptset,
    snakemake.params.spec,
    Path(snakemake.output[0]),
    seed=snakemake.params.seed,
    repo_root=repo_root,
)
