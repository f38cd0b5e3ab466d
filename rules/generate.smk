# Generation: K sampled continuations per prompt, for every seed, model and
# prompt set. Prompts are cut into shards of generation.shard_size that run as
# separate jobs (on a cluster, on separate GPUs) and are gathered afterwards; a
# rerun after a failure redoes only the missing shards.


include: "inputs/generate.smk"


rule generate_continuations:
    input:
        model=model_dir,
        prompts=LAYOUT.path("prompts"),
    output:
        LAYOUT.path("generation_shard"),
    log:
        f"{LOGS}/generate_continuations/seed-{{seed}}/{{model}}/{{promptset}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/generate_continuations/seed-{{seed}}/{{model}}/{{promptset}}/shard-{{shard}}.tsv"
    conda:
        "../envs/compress.yaml"
    threads: THREADS["model"]
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=120,
    params:
        samples=promptset_samples,
        sampling=canonical(config["generation"]),
        seed=seed_int,
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/generate_continuations.py"


rule gather_generations:
    input:
        generation_shards,
    output:
        LAYOUT.path("gathered_generations"),
    log:
        f"{LOGS}/gather_generations/seed-{{seed}}/{{model}}/{{promptset}}.log",
    conda:
        "../envs/score.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/gather_shards.py"
