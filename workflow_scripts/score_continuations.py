"""Rule score_continuations: toxicity, VADER sentiment (and regard) of every continuation.

With ``input.prompts`` (the prompt file of the shard's prompt set) a prompt set
with groups also gets ``toxicity_masked``: the toxicity with the group's name masked.
"""

import logging
from pathlib import Path

from compfair.io import setup_logging
from compfair.scoring import score_generations

setup_logging(snakemake.log[0], threads=getattr(snakemake.params, "torch_threads", None))
regard = snakemake.params.regard_model
if regard is None and snakemake.wildcards.promptset == snakemake.config["report"]["bias_promptset"]:
    logging.getLogger("score_continuations").info(
        "regard skipped: no scoring.regard_model configured"
    )
prompts = getattr(snakemake.input, "prompts", None)
score_generations(
    Path(snakemake.input[0]),
    Path(snakemake.output[0]),
    scorer=snakemake.params.scorer,
    scorer_options=dict(snakemake.params.options),
    regard_model=regard,
    prompts_path=Path(prompts) if prompts else None,
)
