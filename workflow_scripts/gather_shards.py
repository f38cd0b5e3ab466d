"""Rules gather_generations, gather_scores: join a prompt set's shards in order."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

import logging

from compfair.io import concatenate_shards, setup_logging

setup_logging(snakemake.log[0])
n = concatenate_shards(snakemake.input, snakemake.output[0])
logging.getLogger("gather_shards").info("%d rows from %d shard(s)", n, len(snakemake.input))
