"""Rule plot_figures: the figures of the report."""

from pathlib import Path

from compfair.io import setup_logging
from compfair.plots import plot_all

setup_logging(snakemake.log[0])
written = plot_all(
    Path(snakemake.input.metrics),
    Path(snakemake.output[0]).parent,
    bias_prompts=Path(snakemake.input.bias_prompts),
    promptset=snakemake.params.toxicity_promptset,
    bias_promptset=snakemake.params.bias_promptset,
    calibration_csv=Path(snakemake.input.calibration),
)
assert sorted(map(str, written)) == sorted(snakemake.output), "figure names differ from the rule's outputs"
