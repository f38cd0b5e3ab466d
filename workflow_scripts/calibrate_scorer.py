"""Rule calibrate_scorer: the toxicity scorer against the stored Perspective scores.

The calibration source is the toxicity prompt set's config entry
(``params.source``): every text of that source with a stored score is used,
not only the prompts sampled for generation. A rule that still names the
prepared prompt file as its input (and no ``params.source``) calibrates on it.
"""

from pathlib import Path

from compfair.calibration import calibrate_scorer
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=getattr(snakemake.params, "torch_threads", None))
params = snakemake.params
source = getattr(params, "source", None)
threshold_json = getattr(snakemake.output, "threshold", None)
calibrate_scorer(
    dict(source) if source else Path(snakemake.input[0]),
    Path(snakemake.output[0]),
    scorer=params.scorer,
    scorer_options=dict(params.options),
    threshold=params.threshold,
    repo_root=Path(getattr(params, "repo_root", ".")),
    threshold_json=Path(threshold_json) if threshold_json else None,
)
