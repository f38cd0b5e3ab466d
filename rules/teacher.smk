# Teacher: the base model fine-tuned on the training split.


rule finetune_teacher:
    input:
        base=LAYOUT.path("model", modelpath="base"),
        tokens=LAYOUT.path("tokens", split="train"),
    output:
        directory(LAYOUT.path("model", modelpath="seed-{tseed}/teacher")),
    log:
        f"{LOGS}/finetune_teacher/seed-{{tseed}}.log",
    benchmark:
        f"{BENCH}/finetune_teacher/seed-{{tseed}}.tsv"
    priority: 10  # on every model's path: start it before the many small jobs
    conda:
        "../envs/compress.yaml"
    threads: THREADS["train"]
    resources:
        gpu=1,
        mem_mb=grow_mem(8000),
        runtime=120,
    params:
        train=canonical(config["teacher"]),
        seed=tseed_int,
        checkpoint_dir=checkpoint_dir("teacher"),
        torch_threads=THREADS["train"],
    script:
        "../workflow_scripts/finetune_teacher.py"
