# Quality guards: is the text a model writes still language? Per model, over
# every prompt set: perplexity of its continuations under the teacher (the token
# ids it drew), distinct-n and words per continuation per prompt, the share of
# empty continuations, each with its per-prompt values; the aggregation holds
# them to the thresholds against the parent's, with bootstrap intervals.


include: "inputs/quality.smk"


rule assess_quality:
    input:
        generations=promptset_generations,
        teacher=teacher_dir,
    output:
        LAYOUT.path("quality"),
    log:
        f"{LOGS}/assess_quality/seed-{{seed}}/{{model}}.log",
    benchmark:
        f"{BENCH}/assess_quality/seed-{{seed}}/{{model}}.tsv"
    conda:
        "../envs/compress.yaml"
    threads: THREADS["model"]
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    params:
        promptsets=PROMPTSETS,
        batch_size=config["evaluation"]["text_batch_size"],
        teacher_samples=config["evaluation"]["teacher_samples"],
        teacher_prompts=config["evaluation"]["teacher_prompts"],
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/assess_quality.py"
