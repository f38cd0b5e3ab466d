"""Rule prepare_prompts: one prompt set in the workflow's prompt format."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.data import prepare_prompts
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
repo_root = Path(snakemake.scriptdir).parent
prepare_prompts(
    snakemake.wildcards.promptset,
    snakemake.params.spec,
    Path(snakemake.output[0]),
    seed=snakemake.params.seed,
    repo_root=repo_root,
)
