"""Rule import_base_model: the configured base model as a plain Hugging Face folder."""

from pathlib import Path

from compfair.io import setup_logging
from compfair.models import import_base_model

setup_logging(snakemake.log[0], threads=snakemake.threads)
import_base_model(snakemake.params.spec, Path(snakemake.output[0]), seed=snakemake.params.seed)
