"""Rule distill_student: train a student of the teacher's layers, with or without KD."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.distill import distill
from compfair.io import setup_logging
from compfair.training import TrainConfig, remove_checkpoints

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
settings = snakemake.params.train
spec = snakemake.params.spec
checkpoints = Path(snakemake.params.checkpoint_dir)
distill(
    Path(snakemake.input.teacher),
    Path(snakemake.input.tokens),
    Path(snakemake.output[0]),
    TrainConfig.from_settings(settings, seed=snakemake.params.seed),
    temperature=settings["temperature"],
    alpha_kd=settings["alpha_kd"],
    alpha_lm=settings["alpha_lm"],
    alpha_cos=settings["alpha_cos"],
    checkpoint_dir=checkpoints,
    keep=spec["level"],
    use_kd=spec["method"] == "kd",
    layer_selection=spec.get("layer_selection", "even"),  # in the spec only when not even
    calibration=spec.get("calibration"),
)
remove_checkpoints(checkpoints)
