"""Rule audit_scorer: the toxicity scorer on neutral sentences naming each bias group."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.audit import audit_scorer
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
out = snakemake.output
audit_scorer(
    Path(snakemake.input.prompts),
    Path(out.table),
    scorer=snakemake.params.scorer,
    scorer_options=dict(snakemake.params.options),
    threshold=snakemake.params.threshold,
    spread_csv=Path(out.spread),
    sentences_csv=Path(out.sentences),
)
