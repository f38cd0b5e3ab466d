# Input functions and params of generation (rules/generate.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def model_dir(wildcards):
    """The folder of ``{model}`` for generation seed ``{seed}``."""
    return LAYOUT.path("model", modelpath=model_path(wildcards.model, wildcards.seed))


def promptset_samples(wildcards):
    return config["prompts"][wildcards.promptset]["samples"]


def generation_shards(wildcards):
    return expand(
        LAYOUT.path("generation_shard"),
        shard=shard_ids(wildcards.promptset),
        allow_missing=True,
    )
