# Teacher: the base model fine-tuned on the training split.


rule finetune_teacher:
    input:
        base="results/models/base",
        tokens="results/data/tokens/train.safetensors",
    output:
        directory("results/models/seed-{tseed}/teacher"),
    params:
        train=config["teacher"],
        seed=tseed_int,
        checkpoint_dir=checkpoint_dir("teacher"),
    log:
        "logs/finetune_teacher/seed-{tseed}.log",
    benchmark:
        "benchmarks/finetune_teacher/seed-{tseed}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=grow_mem(8000),
        runtime=120,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/finetune_teacher.py"
