"""Rule plot_figures: the figures of the report."""

from pathlib import Path

import pandas as pd

from compfair.io import setup_logging
from compfair.plots import (
    group_domains_from_prompts,
    plot_bold_heatmap,
    plot_distillation_panel,
    plot_metrics_vs_sparsity,
    plot_scorer_calibration,
    plot_sentiment_by_group,
    plot_tradeoff,
    read_metrics,
)

setup_logging(snakemake.log[0])
metrics = read_metrics(Path(snakemake.input.metrics))
group_domains = {}
for prompts in snakemake.input.prompts:
    group_domains.update(group_domains_from_prompts(Path(prompts)))
toxic, bias = snakemake.params.toxicity_promptset, snakemake.params.bias_promptset
sparsity, distillation, tradeoff, heatmap, sentiment, calibration = map(Path, snakemake.output)
plot_metrics_vs_sparsity(metrics, sparsity, promptset=toxic, bias_promptset=bias)
plot_distillation_panel(metrics, distillation, promptset=toxic)
plot_tradeoff(metrics, tradeoff, promptset=toxic)
plot_bold_heatmap(metrics, heatmap, group_domains=group_domains, promptset=bias)
plot_sentiment_by_group(metrics, sentiment, group_domains=group_domains)
plot_scorer_calibration(pd.read_csv(snakemake.input.calibration), calibration)
