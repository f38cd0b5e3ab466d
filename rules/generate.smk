# Generation: K sampled continuations per prompt, for every model and prompt set.


rule generate_continuations:
    input:
        model=model_dir,
        prompts="results/data/prompts/{promptset}.jsonl",
    output:
        "results/generations/{model}/{promptset}.jsonl",
    params:
        samples=promptset_samples,
        sampling=config["generation"],
        seed=config["seed"],
    log:
        "logs/generate_continuations/{model}/{promptset}.log",
    benchmark:
        "benchmarks/generate_continuations/{model}/{promptset}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/generate_continuations.py"
