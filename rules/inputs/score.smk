# Input functions and params of scoring (rules/score.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def score_shards(wildcards):
    return expand(
        LAYOUT.path("score_shard"),
        shard=shard_ids(wildcards.promptset),
        allow_missing=True,
    )
