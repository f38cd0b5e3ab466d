# Distillation: a half-depth student initialised from every other teacher
# layer and trained against the teacher's logits (the DistilGPT2 recipe).


rule distill_student:
    input:
        teacher="results/models/teacher",
        tokens="results/data/tokens/train.safetensors",
    output:
        directory("results/models/student"),
    params:
        train=config["student"],
        seed=config["seed"],
        checkpoint_dir=checkpoint_dir("student"),
    log:
        "logs/distill_student.log",
    benchmark:
        "benchmarks/distill_student.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/distill_student.py"
