# Input functions and params of the quality guards (rules/quality.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def teacher_dir(wildcards):
    return LAYOUT.path("model", modelpath=model_path(TEACHER, wildcards.seed))


def generations_file(seed, model, promptset):
    """The generations of (seed, model, prompt set): gathered, or the only shard."""
    shards = len(shard_ids(promptset))
    return LAYOUT.generations(shards, seed=seed, model=model, promptset=promptset)


def promptset_generations(wildcards):
    """Every prompt set's generations of ``{model}`` for seed ``{seed}``."""
    return [generations_file(wildcards.seed, wildcards.model, ps) for ps in PROMPTSETS]
