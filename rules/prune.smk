# Pruning: global unstructured magnitude pruning of the teacher at each sparsity.


rule prune_model:
    input:
        "results/models/seed-{tseed}/teacher",
    output:
        directory("results/models/seed-{tseed}/pruned-{sparsity}"),
    params:
        tolerance=config["pruning"]["tolerance"],
    log:
        "logs/prune_model/seed-{tseed}/{sparsity}.log",
    benchmark:
        "benchmarks/prune_model/seed-{tseed}/{sparsity}.tsv"
    threads: 1  # many small jobs: run them side by side rather than widen each
    resources:
        mem_mb=grow_mem(4000),
        runtime=20,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/prune_model.py"
