"""Rule finetune_teacher: fine-tune the base model on the training split."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.training import TrainConfig, finetune_teacher, remove_checkpoints

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
checkpoints = Path(snakemake.params.checkpoint_dir)
finetune_teacher(
    Path(snakemake.input.base),
    Path(snakemake.input.tokens),
    Path(snakemake.output[0]),
    TrainConfig.from_settings(snakemake.params.train, seed=snakemake.params.seed),
    checkpoint_dir=checkpoints,
)
remove_checkpoints(checkpoints)
