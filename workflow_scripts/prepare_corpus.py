"""Rule prepare_corpus: clean, de-duplicate and split the corpus."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

import logging
from pathlib import Path

from compfair.config import project_path
from compfair.data import prepare_corpus
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
path = project_path(p.path, Path(snakemake.scriptdir).parent)
stats = prepare_corpus(
    Path(path) if path else None,
    Path(snakemake.output.train),
    Path(snakemake.output.heldout),
    heldout_fraction=p.heldout_fraction,
    max_documents=p.max_documents,
    min_chars=p.min_chars,
    seed=p.seed,
)
logging.getLogger("prepare_corpus").info("corpus: %s", stats)
