"""Rule finetune_teacher: fine-tune the base model on the training split."""

import shutil
from pathlib import Path

from compfair.io import setup_logging
from compfair.training import TrainConfig, finetune_teacher

setup_logging(snakemake.log[0], threads=snakemake.threads)
train = {k: v for k, v in snakemake.params.train.items() if k in TrainConfig.__dataclass_fields__}
checkpoints = Path(snakemake.params.checkpoint_dir)
finetune_teacher(
    Path(snakemake.input.base),
    Path(snakemake.input.tokens),
    Path(snakemake.output[0]),
    TrainConfig(**train, seed=snakemake.params.seed),
    checkpoint_dir=checkpoints,
)
# The finished model is the output; the resumable state is no longer needed.
shutil.rmtree(checkpoints, ignore_errors=True)
