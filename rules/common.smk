# What every stage shares: config validation, the models of the study
# (compfair.variants), the experimental axes, the result paths (compfair.layout) and
# the input functions several stages use. A stage's own input functions are in
# rules/inputs/<stage>.smk, included by its rule file. Nothing here runs a job.

import functools
import hashlib
import json
import math
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from compfair.compression import get_method
from compfair.config import (
    canonical,
    config_errors,
    drop_removed,
    missing_paths,
    unknown_names,
)
from compfair.data.sources import get_source, source_problems
from compfair.intrinsic import benchmark_problems, enabled_benchmarks, get_benchmark
from compfair.layout import Layout, shard_count
from compfair.layout import stored_path as layout_path
from compfair.plots import figure_specs
from compfair.plugins import load_plugins, plugin_file_of
from compfair.scoring import SCORERS
from compfair.variants import (
    BASE,
    COMPRESSED_FAMILIES,
    TEACHER,
    build_variants,
    variant_problems,
)
from compfair.worker import warm_up

REPO = Path(workflow.basedir)
SCHEMA = REPO / "schemas" / "config.schema.yaml"

# Validate before anything is scheduled: a typo in a key or a sparsity of 1.5
# stops the run here, with every offending key named. Snakemake's validate then
# fills in the schema's defaults.
_problems = config_errors(config, SCHEMA)
if _problems:
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(_problems))
drop_removed(config)  # entries a preset set to null
validate(config, schema="../schemas/config.schema.yaml")
try:
    load_plugins(config["plugins"], REPO)
except (FileNotFoundError, ImportError) as exc:
    raise WorkflowError(f"invalid configuration:\n  {exc}")
_problems = (
    missing_paths(config, REPO)
    + source_problems(config, REPO)
    + benchmark_problems(config, REPO)
    + unknown_names(config)
    + variant_problems(config)
)
if _problems:
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(_problems))


def plugin_files(*entries):
    """The plug-in files (config key plugins) that define these registry entries: inputs of
    the jobs that use them, so that editing a plug-in reruns exactly those jobs."""
    return sorted({f for e in entries if (f := plugin_file_of(e)) is not None})


SCORER_PLUGINS = plugin_files(SCORERS[config["scoring"]["toxicity_scorer"]])

# ---- where a study writes --------------------------------------------------

STUDY = config["study"]
LAYOUT = Layout(STUDY)  # every result path (compfair/layout.py)
LOGS = f"logs/{STUDY}"
BENCH = f"benchmarks/{STUDY}"

# ---- the models and the experimental axes ------------------------------------

VARIANTS = build_variants(config)
MODELS = list(VARIANTS)
SEED = config["seed"]
SEEDS = config["replicates"]["seeds"] or [SEED]
RETRAIN = config["replicates"]["retrain"]
PROMPTSETS = sorted(config["prompts"])
REFERENCES = {name: config["references"][name] for name in VARIANTS.names("reference")}
THREADS = config["threads"]


def train_seed(seed):
    """The training seed of the models that generation seed ``seed`` uses."""
    return int(seed) if RETRAIN else SEED


def stored_path(model, tseed):
    """Folder of ``model`` under results/<study>/models, for training seed ``tseed``."""
    return layout_path(model, VARIANTS[model].family, tseed)


def model_path(model, seed):
    """Folder of ``model`` as generation seed ``seed`` uses it."""
    return stored_path(model, train_seed(seed))


wildcard_constraints:
    seed="[0-9]+",
    tseed="[0-9]+",
    model=VARIANTS.wildcard(),
    student=VARIANTS.wildcard("distillation"),
    variant=VARIANTS.wildcard(*COMPRESSED_FAMILIES),
    control=VARIANTS.wildcard("control"),
    promptset="|".join(re.escape(p) for p in PROMPTSETS),
    reference=VARIANTS.wildcard("reference"),
    modelpath=(
        f"{BASE}|reference/({VARIANTS.wildcard('reference')})"
        f"|seed-[0-9]+/({VARIANTS.wildcard('finetuned', 'distillation', *COMPRESSED_FAMILIES, 'control')})"
    ),
    split="train|heldout",
    shard="[0-9]+",


# The figures are plug-ins too (compfair/plots/): one module and one caption each.
FIGURE_SPECS = figure_specs()
FIGURES = [LAYOUT.figure(s.name) for s in FIGURE_SPECS]


# ---- resources ------------------------------------------------------------


def grow_mem(base_mb):
    """Memory request that grows with each retry (OOM kills are the usual cause)."""

    def mem_mb(wildcards, attempt):
        return base_mb * attempt

    return mem_mb


# GPUs. Rules that run a model (fine-tuning, distillation, compression,
# generation, evaluation, and scoring with a neural scorer) declare `gpu=1`;
# the code uses a GPU whenever the job sees one and runs on CPU otherwise. On a
# single machine the request is only a label (the local scheduler limits no
# resource not given in --resources); through profiles/slurm it becomes
# `sbatch --gpus=1`. Sites whose nodes have no GPUs set `gpu: 0` for these
# rules (see profiles/slurm).


def scorer_gpus(wildcards):
    """One GPU when scoring runs a neural classifier (the scorer or, for BOLD, regard)."""
    neural = SCORERS[config["scoring"]["toxicity_scorer"]].uses_gpu
    if getattr(wildcards, "promptset", None) is not None and regard_model_for(
        wildcards
    ):
        neural = True
    return int(neural)


# ---- input functions and params --------------------------------------------


def parent_dir(wildcards):
    """The folder of the parent of ``{variant}`` (or ``{student}``) for training seed ``{tseed}``."""
    name = getattr(wildcards, "variant", None) or wildcards.student
    return LAYOUT.path(
        "model", modelpath=stored_path(VARIANTS[name].parent, wildcards.tseed)
    )


def variant_spec(wildcards):
    """What the compression job runs: method, exact level and options (canonical)."""
    v = VARIANTS[getattr(wildcards, "variant", None) or wildcards.student]
    return canonical({"method": v.method, "level": v.value, "options": dict(v.options)})


def tseed_int(wildcards):
    return int(wildcards.tseed)


def seed_int(wildcards):
    return int(wildcards.seed)


def regard_model_for(wildcards):
    """The regard classifier, for the bias prompt set only (None: no regard)."""
    if wildcards.promptset != config["report"]["bias_promptset"]:
        return None
    return config["scoring"]["regard_model"]


def checkpoint_dir(stage):
    """Resumable training state of ``stage`` for training seed ``{tseed}``.

    Keyed by the config that made it: a restarted job resumes only from a
    checkpoint of the same settings; a changed config starts afresh.
    """

    def path(wildcards):
        name = getattr(wildcards, "student", stage)
        key = {
            "stage": stage,
            "model": name,
            "spec": VARIANTS[name].value if name in VARIANTS else None,
            "seed": int(wildcards.tseed),
            "train": config[stage],
            "base": config["base_model"],
            "corpus": config["corpus"],
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[
            :12
        ]
        return LAYOUT.path(
            "checkpoint", name=name, tseed=wildcards.tseed, digest=digest
        )

    return path


# ---- shards -----------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _shard_count(path, mtime_ns):
    """Shards of a prompts file (cached: every job of a prompt set asks)."""
    return shard_count(path, config["generation"]["shard_size"])


def shard_ids(promptset):
    """Shard indices of a prompt set; known once its prompts are prepared."""
    prompts = checkpoints.prepare_prompts.get(promptset=promptset).output[0]
    return list(range(_shard_count(prompts, os.stat(prompts).st_mtime_ns)))


# ---- everything the tables need ------------------------------------------

# The keys of the held-out evaluation (evaluate_model, match_control): the quality job's
# evaluation keys (teacher_prompts, text_batch_size) are not among them.
HELDOUT_EVALUATION = canonical(
    {k: config["evaluation"][k] for k in ("seq_len", "max_tokens", "batch_size")}
)
INTRINSIC_SPECS = canonical(enabled_benchmarks(config))
INTRINSIC = bool(INTRINSIC_SPECS)
# evaluate_model's intrinsic-bias outputs and settings (none when no benchmark runs): point
# and per-item values; their intervals are the tables' (the bootstrap settings rerun no model)
INTRINSIC_PATTERNS = {
    "table": LAYOUT.path("intrinsic"),
    "per_item": LAYOUT.path("intrinsic_items"),
}
INTRINSIC_OUTPUTS = INTRINSIC_PATTERNS if INTRINSIC else {}
INTRINSIC_PLUGINS = plugin_files(*(get_benchmark(name) for name in INTRINSIC_SPECS))
INTRINSIC_PARAMS = {
    "specs": INTRINSIC_SPECS,
    "batch_size": config["intrinsic"]["batch_size"],
    "seed": config["seed"],
}
