"""Rule aggregate_metrics: every score and evaluation in the tidy tables."""

from pathlib import Path

from compfair.aggregate import aggregate_metrics
from compfair.io import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
scoring = p.scoring
runs = [(s, m, ps) for s in p.seeds for m in p.models for ps in p.promptsets]
aggregate_metrics(
    score_files={(s, m, ps): Path(f"results/scores/seed-{s}/{m}/{ps}.csv") for s, m, ps in runs},
    prompt_files=dict(zip(p.promptsets, map(Path, snakemake.input.prompts), strict=True)),
    eval_files={key: Path(path) for key, path in p.eval_paths.items()},
    quality_files={(s, m, ps): Path(f"results/quality/seed-{s}/{m}/{ps}.json") for s, m, ps in runs},
    intrinsic_files={key: Path(path) for key, path in p.intrinsic_paths.items()},
    model_info=p.model_info,
    out_csv=Path(snakemake.output.metrics),
    out_per_seed_csv=Path(snakemake.output.per_seed),
    toxicity_threshold=scoring["toxicity_threshold"],
    sentiment_thresholds=(scoring["sentiment_positive"], scoring["sentiment_negative"]),
    quality_thresholds=dict(p.quality_thresholds),
    bootstrap=dict(p.bootstrap),
)
