"""Rule match_control: a model's quality-matched control, made from the model's parent."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.compression.controls import make_matched_control
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
make_matched_control(
    Path(snakemake.input.parent),
    Path(snakemake.output[0]),
    kind=snakemake.params.kind,
    model_eval=Path(snakemake.input.model_eval),
    parent_eval=Path(snakemake.input.parent_eval),
    heldout_tokens=Path(snakemake.input.tokens),
    evaluation=snakemake.params.evaluation,
    search=snakemake.params.search,
    variant=snakemake.wildcards.control,
    matches=snakemake.params.matches,
)
