"""Rule aggregate_metrics: every score and evaluation in one tidy table."""

from pathlib import Path

from compfair.aggregate import aggregate_metrics
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
models, promptsets = snakemake.params.models, snakemake.params.promptsets
scores = iter(snakemake.input.scores)  # expand() order: model-major, then prompt set
score_files = {(m, p): Path(next(scores)) for m in models for p in promptsets}
scoring = snakemake.params.scoring
aggregate_metrics(
    score_files,
    prompt_files=dict(zip(promptsets, map(Path, snakemake.input.prompts), strict=True)),
    eval_files=dict(zip(models, map(Path, snakemake.input.evals), strict=True)),
    out_csv=Path(snakemake.output[0]),
    toxicity_threshold=scoring["toxicity_threshold"],
    sentiment_thresholds=(scoring["sentiment_positive"], scoring["sentiment_negative"]),
)
