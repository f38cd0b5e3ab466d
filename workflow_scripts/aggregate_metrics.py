"""Rule aggregate_metrics: every score, comparison and evaluation in the tidy tables."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.tables.build import aggregate_metrics

setup_logging(snakemake.log[0])
p = snakemake.params
scoring = p.scoring


def paths(mapping):
    return {key: Path(path) for key, path in mapping.items()}


aggregate_metrics(
    score_files=paths(p.score_files),
    prompt_files=paths(p.prompt_files),
    eval_files=paths(p.eval_files),
    quality_files=paths(p.quality_files),
    intrinsic_files=paths(p.intrinsic_files),
    item_files=paths(p.item_files),
    variants=p.variants,
    outputs={name: Path(path) for name, path in snakemake.output.items()},
    toxicity_threshold=scoring["toxicity_threshold"],
    sentiment_thresholds=(scoring["sentiment_positive"], scoring["sentiment_negative"]),
    quality_thresholds=dict(p.quality_thresholds),
    bootstrap=dict(p.bootstrap),
    samples=dict(p.samples),
    intrinsic_seed=p.intrinsic_seed,
)
