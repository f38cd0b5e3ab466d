"""Rule calibrate_scorer: the toxicity scorer against the stored Perspective scores."""

from pathlib import Path

from compfair.calibration import calibrate_scorer
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
calibrate_scorer(
    Path(snakemake.input[0]),
    Path(snakemake.output[0]),
    scorer=snakemake.params.scorer,
    scorer_options=dict(snakemake.params.options),
    threshold=snakemake.params.threshold,
)
