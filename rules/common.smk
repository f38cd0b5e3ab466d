# Helpers shared by the rules: config validation, the experimental axes and
# input functions. Nothing here runs a job.

import hashlib
import json
import math
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from compfair.config import config_errors, missing_paths, unknown_names
from compfair.scoring import SCORERS

REPO = Path(workflow.basedir)
SCHEMA = REPO / "schemas" / "config.schema.yaml"

# Validate before anything is scheduled: a typo in a key or a sparsity of 1.5
# stops the run here, with every offending key named. Snakemake's validate then
# fills in the schema's defaults.
_problems = config_errors(config, SCHEMA)
if _problems:
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(_problems))
validate(config, schema="../schemas/config.schema.yaml")
_problems = missing_paths(config, REPO) + unknown_names(config)
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


SEED = config["seed"]
SEEDS = config["replicates"]["seeds"] or [SEED]
RETRAIN = config["replicates"]["retrain"]
SPARSITIES = sorted({sparsity_label(s) for s in config["pruning"]["sparsities"]})
PROMPTSETS = list(config["prompts"])
REFERENCES = dict(config["references"])
TRAINED = ["teacher", "student"] + [f"pruned-{s}" for s in SPARSITIES]
MODELS = TRAINED + list(REFERENCES)


def train_seed(seed):
    """The seed whose models a generation seed uses."""
    return int(seed) if RETRAIN else SEED


def model_path(model, seed):
    """Folder of a model as used by generation seed ``seed``."""
    if model in REFERENCES:
        return f"reference/{model}"
    return f"seed-{train_seed(seed)}/{model}"


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    seed="[0-9]+",
    tseed="[0-9]+",
    model=f"teacher|student|pruned-[0-9]\\.[0-9][0-9]|{_alternatives(REFERENCES)}",
    sparsity="[0-9]\\.[0-9][0-9]",
    promptset=_alternatives(PROMPTSETS),
    reference=_alternatives(REFERENCES),
    modelpath=f"seed-[0-9]+/[^/]+|reference/({_alternatives(REFERENCES)})",
    split="train|heldout",
    shard="[0-9]+",


FIGURE_NAMES = [
    "metrics_vs_sparsity",
    "distillation",
    "tradeoff",
    "bold_heatmap",
    "sentiment_by_group",
    "scorer_calibration",
]
FIGURES = expand("results/figures/{name}.png", name=FIGURE_NAMES)


# ---- resources ------------------------------------------------------------


def grow_mem(base_mb):
    """Memory request that grows with each retry (OOM kills are the usual cause)."""

    def mem_mb(wildcards, attempt):
        return base_mb * attempt

    return mem_mb


# GPUs. Rules that run a model (fine-tuning, distillation, generation,
# evaluation, and scoring with a neural scorer) declare `gpu=1`; the code uses a
# GPU whenever the job sees one and runs on CPU otherwise. On a single machine
# the request is only a label (the local scheduler limits no resource not given
# in --resources); through profiles/slurm it becomes `sbatch --gpus=1`. Sites
# whose nodes have no GPUs set `gpu: 0` for these rules (see profiles/slurm).


def scorer_gpus(wildcards):
    """One GPU when scoring runs a neural classifier (the scorer or, for BOLD, regard)."""
    neural = SCORERS[config["scoring"]["toxicity_scorer"]].uses_gpu
    if getattr(wildcards, "promptset", None) is not None and regard_model_for(wildcards):
        neural = True
    return int(neural)


# ---- input functions and params --------------------------------------------


def model_dir(wildcards):
    """The folder of ``{model}`` for generation seed ``{seed}``."""
    return f"results/models/{model_path(wildcards.model, wildcards.seed)}"


def teacher_dir(wildcards):
    return f"results/models/{model_path('teacher', wildcards.seed)}"


def tseed_int(wildcards):
    return int(wildcards.tseed)


def seed_int(wildcards):
    return int(wildcards.seed)


def reference_spec(wildcards):
    return {"source": "hf", "path": REFERENCES[wildcards.reference]["path"]}


def promptset_spec(wildcards):
    """The loader options of a prompt set: the keys that are set, less the sampler's K."""
    spec = {k: v for k, v in config["prompts"][wildcards.promptset].items() if v is not None and k != "samples"}
    if "path" in spec and (REPO / spec["path"]).exists():  # else a hub id, passed as is
        spec["path"] = resolve_path(spec["path"])
    return spec


def regard_model_for(wildcards):
    """The regard classifier, for the bias prompt set only (None: no regard)."""
    if wildcards.promptset != config["report"]["bias_promptset"]:
        return None
    return config["scoring"]["regard_model"]


def promptset_samples(wildcards):
    return config["prompts"][wildcards.promptset]["samples"]


def split_max_tokens(wildcards):
    return config["corpus"][f"max_{wildcards.split}_tokens"]


def checkpoint_dir(stage):
    """Resumable training state of ``stage`` for training seed ``{tseed}``.

    Keyed by the config that made it: a restarted job resumes only from a
    checkpoint of the same settings; a changed config starts afresh.
    """

    def path(wildcards):
        key = {
            "stage": stage,
            "seed": int(wildcards.tseed),
            "train": config[stage],
            "base": config["base_model"],
            "corpus": config["corpus"],
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        return f"results/checkpoints/{stage}-seed{wildcards.tseed}-{digest}"

    return path


# ---- shards -----------------------------------------------------------------


def _count_lines(path):
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def shard_ids(promptset):
    """Shard indices of a prompt set; known once its prompts are prepared."""
    prompts = checkpoints.prepare_prompts.get(promptset=promptset).output[0]
    n = _count_lines(prompts)
    size = config["generation"]["shard_size"]
    return list(range(max(1, math.ceil(n / size))))


def generation_shards(wildcards):
    return expand(
        "results/generations/seed-{seed}/{model}/{promptset}/shard-{shard}.jsonl",
        shard=shard_ids(wildcards.promptset),
        allow_missing=True,
    )


def score_shards(wildcards):
    return expand(
        "results/scores/seed-{seed}/{model}/{promptset}/shard-{shard}.csv",
        shard=shard_ids(wildcards.promptset),
        allow_missing=True,
    )


# ---- everything the tables need ------------------------------------------


def eval_path(model, seed):
    return f"results/eval/{model_path(model, seed)}.json"


def all_scores():
    return expand("results/scores/seed-{seed}/{model}/{promptset}.csv", seed=SEEDS, model=MODELS, promptset=PROMPTSETS)


def all_quality():
    return expand("results/quality/seed-{seed}/{model}/{promptset}.json", seed=SEEDS, model=MODELS, promptset=PROMPTSETS)


INTRINSIC = any(config["intrinsic"][name]["enabled"] for name in ("crows_pairs", "stereoset"))


def intrinsic_path(model, seed):
    return f"results/intrinsic/{model_path(model, seed)}.csv"


def all_intrinsic():
    return sorted({intrinsic_path(m, s) for s in SEEDS for m in MODELS}) if INTRINSIC else []


def intrinsic_set(name):
    """The config of intrinsic set ``name``, a local file's path resolved against the repository."""
    spec = dict(config["intrinsic"][name])
    if spec.get("source") in ("csv", "json", "jsonl") and spec.get("path"):
        spec["path"] = resolve_path(spec["path"])
    return spec


def model_info():
    """(compression, level) of every model, for the tables."""
    info = {"teacher": ("none", None), "student": ("distillation", None)}
    info.update({f"pruned-{s}": ("pruning", float(s)) for s in SPARSITIES})
    info.update({name: (ref["compression"], None) for name, ref in REFERENCES.items()})
    return info


def all_prompts():
    return expand("results/data/prompts/{promptset}.jsonl", promptset=PROMPTSETS)


def all_evals():
    return sorted({eval_path(m, s) for s in SEEDS for m in MODELS})
