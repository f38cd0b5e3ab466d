"""Rule distill_student: distil a half-depth student from the teacher."""

import shutil
from pathlib import Path

from compfair.distill import distill
from compfair.io import setup_logging
from compfair.training import TrainConfig

setup_logging(snakemake.log[0], threads=snakemake.threads)
settings = snakemake.params.train
train = {k: v for k, v in settings.items() if k in TrainConfig.__dataclass_fields__}
checkpoints = Path(snakemake.params.checkpoint_dir)
distill(
    Path(snakemake.input.teacher),
    Path(snakemake.input.tokens),
    Path(snakemake.output[0]),
    TrainConfig(**train, seed=snakemake.params.seed),
    temperature=settings["temperature"],
    alpha_kd=settings["alpha_kd"],
    alpha_lm=settings["alpha_lm"],
    checkpoint_dir=checkpoints,
)
shutil.rmtree(checkpoints, ignore_errors=True)
