# Helpers shared by the rules: config validation, the models of the study
# (compfair.variants), the experimental axes and input functions. Nothing here
# runs a job.

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


def model_dir(wildcards):
    """The folder of ``{model}`` for generation seed ``{seed}``."""
    return LAYOUT.path("model", modelpath=model_path(wildcards.model, wildcards.seed))


def teacher_dir(wildcards):
    return LAYOUT.path("model", modelpath=model_path(TEACHER, wildcards.seed))


def parent_dir(wildcards):
    """The folder of the parent of ``{variant}`` (or ``{student}``) for training seed ``{tseed}``."""
    name = getattr(wildcards, "variant", None) or wildcards.student
    return LAYOUT.path(
        "model", modelpath=stored_path(VARIANTS[name].parent, wildcards.tseed)
    )


def compress_inputs(wildcards):
    """The parent folder and, for a method that needs it, the calibration tokens."""
    method = get_method(VARIANTS[wildcards.variant].method)
    inputs = {"parent": parent_dir(wildcards), "plugins": plugin_files(method)}
    if method.needs_calibration:
        inputs["tokens"] = LAYOUT.path("tokens", split="train")
    return inputs


def control_parent_dir(wildcards):
    """The folder of the parent of ``{control}`` (its model's parent) for ``{tseed}``."""
    parent = VARIANTS[wildcards.control].parent
    return LAYOUT.path("model", modelpath=stored_path(parent, wildcards.tseed))


def control_model_eval(wildcards):
    """The evaluation of the model ``{control}`` matches, for ``{tseed}``."""
    model = VARIANTS[wildcards.control].matches
    return LAYOUT.path("eval", modelpath=stored_path(model, wildcards.tseed))


def control_parent_eval(wildcards):
    parent = VARIANTS[wildcards.control].parent
    return LAYOUT.path("eval", modelpath=stored_path(parent, wildcards.tseed))


def control_kind(wildcards):
    return VARIANTS[wildcards.control].method


def control_plugins(wildcards):
    return plugin_files(get_method(control_kind(wildcards)))


def control_matches(wildcards):
    return VARIANTS[wildcards.control].matches


def control_seed(tseed, draw):
    """Draw 1's seed is the training seed (as before draws existed); draw d another one."""
    return tseed if draw == 1 else tseed + 10007 * (draw - 1)


def control_search(wildcards):
    """The strength search of ``{control}``: its kind's bounds, tolerance, tries and seed."""
    settings = config["controls"]
    kind = VARIANTS[wildcards.control].method
    return {
        "bounds": settings["bounds"][kind],
        "tolerance": settings["tolerance"],
        "max_tries": settings["max_tries"],
        "seed": control_seed(int(wildcards.tseed), VARIANTS[wildcards.control].value),
    }


def variant_spec(wildcards):
    """What the compression job runs: method, exact level and options (canonical)."""
    v = VARIANTS[getattr(wildcards, "variant", None) or wildcards.student]
    return canonical({"method": v.method, "level": v.value, "options": dict(v.options)})


def student_spec(wildcards):
    """What the distillation job runs: variant_spec, plus, for a share of the layers chosen
    by block influence, the rule and the calibration it measures on (left out otherwise,
    so that students of the default even spread keep their params)."""
    spec = variant_spec(wildcards)
    selection = config["distillation"]["layer_selection"]
    if selection == "even" or isinstance(spec["level"], (str, list)):
        return spec
    return canonical(
        {**spec, "layer_selection": selection, "calibration": config["calibration"]}
    )


def tseed_int(wildcards):
    return int(wildcards.tseed)


def seed_int(wildcards):
    return int(wildcards.seed)


def reference_spec(wildcards):
    return {"source": "hf", "path": REFERENCES[wildcards.reference]["path"]}


def reference_key(wildcards):
    return f"references.{wildcards.reference}"


def promptset_plugins(wildcards):
    return plugin_files(get_source(config["prompts"][wildcards.promptset]["source"]))


def promptset_spec(wildcards):
    """The loader options of a prompt set: the keys that are set, less the sampler's K."""
    return canonical(
        {
            k: v
            for k, v in config["prompts"][wildcards.promptset].items()
            if v is not None and k != "samples"
        }
    )


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


def generation_shards(wildcards):
    return expand(
        LAYOUT.path("generation_shard"),
        shard=shard_ids(wildcards.promptset),
        allow_missing=True,
    )


def score_shards(wildcards):
    return expand(
        LAYOUT.path("score_shard"),
        shard=shard_ids(wildcards.promptset),
        allow_missing=True,
    )


def generations_file(seed, model, promptset):
    """The generations of (seed, model, prompt set): gathered, or the only shard."""
    shards = len(shard_ids(promptset))
    return LAYOUT.generations(shards, seed=seed, model=model, promptset=promptset)


def promptset_generations(wildcards):
    """Every prompt set's generations of ``{model}`` for seed ``{seed}``."""
    return [generations_file(wildcards.seed, wildcards.model, ps) for ps in PROMPTSETS]


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


def score_files(wildcards=None):
    """The scores of every (seed, model, prompt set): gathered, or the only shard."""
    shards = {ps: len(shard_ids(ps)) for ps in PROMPTSETS}
    return {
        (s, m, ps): LAYOUT.scores(shards[ps], seed=s, model=m, promptset=ps)
        for s in SEEDS
        for m in MODELS
        for ps in PROMPTSETS
    }


def score_file_list(wildcards):
    return list(score_files().values())


def quality_files():
    return {
        (s, m): LAYOUT.path("quality", seed=s, model=m) for s in SEEDS for m in MODELS
    }


def eval_files():
    return {
        (s, m): LAYOUT.path("eval", modelpath=model_path(m, s))
        for s in SEEDS
        for m in MODELS
    }


def _intrinsic_outputs(name):
    return {
        (s, m): INTRINSIC_PATTERNS[name].format(modelpath=model_path(m, s))
        for s in SEEDS
        for m in MODELS
        if INTRINSIC
    }


def intrinsic_files():
    return _intrinsic_outputs("table")


def item_files():
    return _intrinsic_outputs("per_item")


def prompt_files():
    return {ps: LAYOUT.path("prompts", promptset=ps) for ps in PROMPTSETS}
