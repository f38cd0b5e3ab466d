"""Rule plot_figures: every registered figure of the report."""

from compfair.worker import hand_over

hand_over()  # run in the pre-imported worker when one is up (compfair/worker.py)

from compfair.plugins import load_job_plugins

load_job_plugins(snakemake)  # the config's plug-in files reach every job (compfair/plugins.py)

from pathlib import Path

from compfair.io import setup_logging
from compfair.plots import FigureOptions, group_domains_from_prompts, plot_all, read_tables

setup_logging(snakemake.log[0])
inputs, params = snakemake.input, snakemake.params
tables = read_tables(
    inputs.metrics,
    inputs.comparisons,
    inputs.models,
    calibration=inputs.calibration,
    audit=inputs.audit,
)
options = FigureOptions(
    params.toxicity_promptset,
    params.bias_promptset,
    params.confidence,
    group_domains_from_prompts(inputs.bias_prompts),
    params.max_perplexity_ratio,
)
written = plot_all(tables, Path(snakemake.output[0]).parent, options)
assert sorted(map(str, written)) == sorted(snakemake.output), (
    "figure names differ from the rule's outputs"
)
