"""compfair: measure what model compression does to toxicity and social bias.

The package holds all logic of the Snakemake workflow; the rule scripts in
``workflow_scripts/`` only unpack the ``snakemake`` object and call it.
"""

__version__ = "0.1.0"
