"""Rule calibrate_scorer: the toxicity scorer against the stored Perspective scores.

Every text of the toxicity prompt set's source with a stored score is used
(``params.source``, the prompt set's config entry), not only the prompts
sampled for generation.
"""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.scorer_calibration import calibrate_scorer

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
params = snakemake.params
calibrate_scorer(
    dict(params.source),
    Path(snakemake.output.table),
    scorer=params.scorer,
    scorer_options=dict(params.options),
    threshold=params.threshold,
    repo_root=Path(snakemake.scriptdir).parent,
    threshold_json=Path(snakemake.output.threshold),
)
