# Distillation: students of the teacher's layers (distillation.students),
# trained against the teacher's logits (kd-*) or, as the control, on the
# language-modelling loss alone (nokd-*).


include: "inputs/distill.smk"


rule distill_student:
    input:
        teacher=parent_dir,
        tokens=LAYOUT.path("tokens", split="train"),
    output:
        directory(LAYOUT.path("model", modelpath="seed-{tseed}/{student}")),
    log:
        f"{LOGS}/distill_student/seed-{{tseed}}/{{student}}.log",
    benchmark:
        f"{BENCH}/distill_student/seed-{{tseed}}/{{student}}.tsv"
    priority: 10  # on every model's path: start it before the many small jobs
    conda:
        "../envs/compress.yaml"
    threads: THREADS["train"]
    resources:
        gpu=1,
        mem_mb=grow_mem(8000),
        runtime=120,
    params:
        spec=student_spec,
        train=canonical(config["student"]),
        seed=tseed_int,
        checkpoint_dir=checkpoint_dir("student"),
        torch_threads=THREADS["train"],
    script:
        "../workflow_scripts/distill_student.py"
