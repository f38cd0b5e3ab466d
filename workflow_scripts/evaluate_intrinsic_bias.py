"""Rule evaluate_intrinsic_bias: CrowS-Pairs and StereoSet scores of one model."""

from pathlib import Path

from compfair.config import project_path
from compfair.intrinsic import evaluate_intrinsic_bias
from compfair.io import setup_logging

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
params = snakemake.params
root = Path(snakemake.scriptdir).parent
crows, stereoset = dict(params.crows), dict(params.stereoset)
for spec in (crows, stereoset):
    if spec.get("source") in ("csv", "json", "jsonl") and spec.get("path"):
        spec["path"] = project_path(spec["path"], root)
evaluate_intrinsic_bias(
    Path(snakemake.input.model),
    Path(snakemake.output.table),
    crows=crows,
    stereoset=stereoset,
    batch_size=params.batch_size,
    seed=params.seed,
    n_boot=params.n_boot,
    confidence=params.confidence,
    items_csv=Path(snakemake.output.per_item),
)
