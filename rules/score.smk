# Scoring: toxicity and sentiment of every continuation; perplexity and size of
# every model.


rule score_continuations:
    input:
        "results/generations/{model}/{promptset}.jsonl",
    output:
        "results/scores/{model}/{promptset}.csv",
    params:
        scorer=config["scoring"]["toxicity_scorer"],
        options=config["scoring"]["scorer_options"],
    log:
        "logs/score_continuations/{model}/{promptset}.log",
    benchmark:
        "benchmarks/score_continuations/{model}/{promptset}.tsv"
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/score_continuations.py"


rule evaluate_model:
    input:
        model=model_dir,
        tokens="results/data/tokens/heldout.safetensors",
    output:
        "results/eval/{model}.json",
    params:
        settings=config["evaluation"],
    log:
        "logs/evaluate_model/{model}.log",
    benchmark:
        "benchmarks/evaluate_model/{model}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/evaluate_model.py"
