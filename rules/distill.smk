# Distillation: a half-depth student initialised from every other teacher
# layer and trained against the teacher's logits (the DistilGPT2 recipe).


rule distill_student:
    input:
        teacher="results/models/seed-{tseed}/teacher",
        tokens="results/data/tokens/train.safetensors",
    output:
        directory("results/models/seed-{tseed}/student"),
    params:
        train=config["student"],
        seed=tseed_int,
        checkpoint_dir=checkpoint_dir("student"),
    log:
        "logs/distill_student/seed-{tseed}.log",
    benchmark:
        "benchmarks/distill_student/seed-{tseed}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=grow_mem(8000),
        runtime=120,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/distill_student.py"
