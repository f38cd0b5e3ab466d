# Scoring: toxicity and sentiment of every continuation (per shard, then
# gathered); perplexity, size and sparsity of every model.


rule score_continuations:
    input:
        "results/generations/seed-{seed}/{model}/{promptset}/shard-{shard}.jsonl",
    output:
        "results/scores/seed-{seed}/{model}/{promptset}/shard-{shard}.csv",
    params:
        scorer=config["scoring"]["toxicity_scorer"],
        options=config["scoring"]["scorer_options"],
        regard_model=regard_model_for,
    log:
        "logs/score_continuations/seed-{seed}/{model}/{promptset}/shard-{shard}.log",
    benchmark:
        "benchmarks/score_continuations/seed-{seed}/{model}/{promptset}/shard-{shard}.tsv"
    resources:
        gpu=scorer_gpus,
        mem_mb=grow_mem(2000),
        runtime=30,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/score_continuations.py"


rule gather_scores:
    input:
        score_shards,
    output:
        "results/scores/seed-{seed}/{model}/{promptset}.csv",
    log:
        "logs/gather_scores/seed-{seed}/{model}/{promptset}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/gather_shards.py"


rule evaluate_model:
    input:
        model="results/models/{modelpath}",
        tokens="results/data/tokens/heldout.safetensors",
    output:
        "results/eval/{modelpath}.json",
    params:
        settings=config["evaluation"],
    log:
        "logs/evaluate_model/{modelpath}.log",
    benchmark:
        "benchmarks/evaluate_model/{modelpath}.tsv"
    threads: 1  # many small jobs: run them side by side rather than widen each
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/evaluate_model.py"
