# Teacher: the base model fine-tuned on the training split.


rule finetune_teacher:
    input:
        base="results/models/base",
        tokens="results/data/tokens/train.safetensors",
    output:
        directory("results/models/teacher"),
    params:
        train=config["teacher"],
        seed=config["seed"],
        checkpoint_dir=checkpoint_dir("teacher"),
    log:
        "logs/finetune_teacher.log",
    benchmark:
        "benchmarks/finetune_teacher.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/finetune_teacher.py"
