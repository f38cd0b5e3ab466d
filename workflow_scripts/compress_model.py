"""Rule compress_model: one pruning or quantization variant of its parent."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.compression.run import compress_model
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
spec = snakemake.params.spec
compress_model(
    Path(snakemake.input.parent),
    Path(snakemake.output[0]),
    method=spec["method"],
    level=spec["level"],
    options=spec["options"],
    seed=snakemake.params.seed,
    calibration_tokens=snakemake.input.get("tokens"),
    calibration=snakemake.params.calibration,
    variant=snakemake.wildcards.variant,
)
