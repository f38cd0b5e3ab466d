"""Rule score_continuations: toxicity, VADER sentiment (and regard) of every continuation.

A prompt set with groups also gets ``toxicity_masked``: the toxicity with the
group's name masked (the prompt file says each prompt's group).
"""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.scoring import score_generations

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
score_generations(
    Path(snakemake.input.generations),
    Path(snakemake.output[0]),
    scorer=snakemake.params.scorer,
    scorer_options=dict(snakemake.params.options),
    regard_model=snakemake.params.regard_model,
    prompts_path=Path(snakemake.input.prompts),
)
