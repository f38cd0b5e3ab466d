"""Rule evaluate_model: held-out perplexity, size and measured sparsity of a model, then its
intrinsic bias on every enabled benchmark (when one is)."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.intrinsic import evaluate_intrinsic_bias, resolve_paths
from compfair.io import setup_logging
from compfair.perplexity import evaluate_model

setup_logging(snakemake.log[0], threads=snakemake.params.torch_threads)
settings = snakemake.params.settings
model_dir = Path(snakemake.input.model)
evaluate_model(
    model_dir,
    Path(snakemake.input.tokens),
    Path(snakemake.output.eval),
    model_id=Path(snakemake.wildcards.modelpath).name,
    seq_len=settings["seq_len"],
    max_tokens=settings["max_tokens"],
    batch_size=settings["batch_size"],
)
intrinsic = snakemake.params.intrinsic
if intrinsic["specs"]:
    root = Path(snakemake.scriptdir).parent
    evaluate_intrinsic_bias(
        model_dir,
        Path(snakemake.output.table),
        specs=resolve_paths(intrinsic["specs"], root),
        batch_size=intrinsic["batch_size"],
        seed=intrinsic["seed"],
        items_csv=Path(snakemake.output.per_item),
    )
