"""Rule import_base_model (and import_reference_model): a model as a plain Hugging Face folder."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.config import project_path
from compfair.io import setup_logging
from compfair.models import import_base_model

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
spec = dict(snakemake.params.spec)
if spec.get("path"):
    spec["path"] = project_path(spec["path"], Path(snakemake.scriptdir).parent)
import_base_model(
    spec,
    Path(snakemake.output[0]),
    seed=snakemake.params.seed,
    config_key=snakemake.params.config_key,
)
