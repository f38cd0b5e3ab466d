# Quality guards: is the text a model writes still language? Perplexity of its
# continuations under the teacher, distinct-n, the share of empty continuations.


rule assess_quality:
    input:
        generations="results/generations/seed-{seed}/{model}/{promptset}.jsonl",
        teacher=teacher_dir,
    output:
        "results/quality/seed-{seed}/{model}/{promptset}.json",
    params:
        batch_size=config["evaluation"]["batch_size"],
    log:
        "logs/assess_quality/seed-{seed}/{model}/{promptset}.log",
    benchmark:
        "benchmarks/assess_quality/seed-{seed}/{model}/{promptset}.tsv"
    threads: 1  # many small jobs: run them side by side rather than widen each
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/assess_quality.py"
