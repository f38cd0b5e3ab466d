"""Rule plot_figures: the figures of the report."""

from pathlib import Path

import pandas as pd

from compfair.io import setup_logging
from compfair.plots import (
    group_domains_from_prompts,
    plot_perplexity_vs_toxicity,
    plot_sentiment_by_group,
    plot_toxicity_vs_sparsity,
)

setup_logging(snakemake.log[0])
metrics = pd.read_csv(snakemake.input.metrics, keep_default_na=False, na_values=[""])
group_domains = {}
for prompts in snakemake.input.prompts:
    group_domains.update(group_domains_from_prompts(Path(prompts)))
promptset = snakemake.params.toxicity_promptset
toxicity, sentiment, tradeoff = map(Path, snakemake.output)
plot_toxicity_vs_sparsity(metrics, toxicity, promptset=promptset)
plot_sentiment_by_group(metrics, sentiment, group_domains=group_domains)
plot_perplexity_vs_toxicity(metrics, tradeoff, promptset=promptset)
