# Input functions and params of the tables (rules/report.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


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
