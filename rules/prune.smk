# Pruning: global unstructured magnitude pruning of the teacher at each sparsity.


rule prune_model:
    input:
        "results/models/teacher",
    output:
        directory("results/models/pruned-{sparsity}"),
    params:
        tolerance=config["pruning"]["tolerance"],
    log:
        "logs/prune_model/{sparsity}.log",
    benchmark:
        "benchmarks/prune_model/{sparsity}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/prune_model.py"
