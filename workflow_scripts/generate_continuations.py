"""Rule generate_continuations: K sampled continuations for one shard of prompts."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.generate import generate_continuations
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
sampling = snakemake.params.sampling
generate_continuations(
    Path(snakemake.input.model),
    Path(snakemake.input.prompts),
    Path(snakemake.output[0]),
    samples=snakemake.params.samples,
    top_p=sampling["top_p"],
    temperature=sampling["temperature"],
    max_new_tokens=sampling["max_new_tokens"],
    batch_size=sampling["batch_size"],
    seed=snakemake.params.seed,
    shard=(int(snakemake.wildcards.shard), sampling["shard_size"]),
    long_prompts=sampling["long_prompts"],
)
