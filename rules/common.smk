# Helpers shared by the rules: config validation, the experimental axes and
# input functions. Nothing here runs a job.

import hashlib
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from compfair.config import config_errors, missing_paths

REPO = Path(workflow.basedir)
SCHEMA = REPO / "schemas" / "config.schema.yaml"

# Validate before anything is scheduled: a typo in a key or a sparsity of 1.5
# stops the run here, with every offending key named. Snakemake's validate then
# fills in the schema's defaults.
_problems = config_errors(config, SCHEMA)
if _problems:
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(_problems))
validate(config, schema="../schemas/config.schema.yaml")
_problems = missing_paths(config, REPO)
if _problems:
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(_problems))


def resolve_path(value):
    """A configured path relative to the repository unless it exists as given."""
    if value is None:
        return None
    return str(value) if Path(value).is_absolute() else str(REPO / value)


# ---- experimental axes ----------------------------------------------------


def sparsity_label(value):
    """The one number format of sparsities in paths and tables: two decimals."""
    return f"{float(value):.2f}"


SPARSITIES = sorted({sparsity_label(s) for s in config["pruning"]["sparsities"]})
PROMPTSETS = list(config["prompts"])
MODELS = ["teacher", "student"] + [f"pruned-{s}" for s in SPARSITIES]


wildcard_constraints:
    model="teacher|student|pruned-[0-9]\\.[0-9][0-9]",
    sparsity="[0-9]\\.[0-9][0-9]",
    promptset="|".join(PROMPTSETS),
    split="train|heldout",


FIGURE_NAMES = ["toxicity_vs_sparsity", "sentiment_by_group", "perplexity_vs_toxicity"]
FIGURES = expand("results/figures/{name}.png", name=FIGURE_NAMES)


# ---- input functions and params --------------------------------------------


def model_dir(wildcards):
    return f"results/models/{wildcards.model}"


def promptset_spec(wildcards):
    """The loader options of a prompt set: the keys that are set, less the sampler's K."""
    spec = {k: v for k, v in config["prompts"][wildcards.promptset].items() if v is not None and k != "samples"}
    if "path" in spec:
        spec["path"] = resolve_path(spec["path"])
    return spec


def promptset_samples(wildcards):
    return config["prompts"][wildcards.promptset]["samples"]


def checkpoint_dir(stage):
    """Resumable training state, keyed by the config that made it.

    A restarted job resumes only from a checkpoint of the same settings; a
    changed config starts afresh in a new folder.
    """
    key = {"stage": stage, "seed": config["seed"], "train": config[stage], "base": config["base_model"], "corpus": config["corpus"]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return f"results/checkpoints/{stage}-{digest}"


def all_scores():
    return expand("results/scores/{model}/{promptset}.csv", model=MODELS, promptset=PROMPTSETS)


def all_prompts():
    return expand("results/data/prompts/{promptset}.jsonl", promptset=PROMPTSETS)


def all_evals():
    return expand("results/eval/{model}.json", model=MODELS)


def split_max_tokens(wildcards):
    return config["corpus"][f"max_{wildcards.split}_tokens"]
