# Generation: K sampled continuations per prompt, for every seed, model and
# prompt set. Prompts are cut into shards of generation.shard_size that run as
# separate jobs (on a cluster, on separate GPUs) and are gathered afterwards; a
# rerun after a failure redoes only the missing shards.


rule generate_continuations:
    input:
        model=model_dir,
        prompts="results/data/prompts/{promptset}.jsonl",
    output:
        "results/generations/seed-{seed}/{model}/{promptset}/shard-{shard}.jsonl",
    params:
        samples=promptset_samples,
        sampling=config["generation"],
        seed=seed_int,
    log:
        "logs/generate_continuations/seed-{seed}/{model}/{promptset}/shard-{shard}.log",
    benchmark:
        "benchmarks/generate_continuations/seed-{seed}/{model}/{promptset}/shard-{shard}.tsv"
    threads: 1  # many small jobs: run them side by side rather than widen each
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=120,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/generate_continuations.py"


rule gather_generations:
    input:
        generation_shards,
    output:
        "results/generations/seed-{seed}/{model}/{promptset}.jsonl",
    log:
        "logs/gather_generations/seed-{seed}/{model}/{promptset}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/gather_shards.py"
