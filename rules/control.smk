# Quality-matched controls (config key controls): the parent of a model degraded by a
# generic method (noise, random pruning) until its held-out perplexity ratio to the
# parent equals the model's; then a model of the study like any other.


include: "inputs/control.smk"


rule match_control:
    input:
        parent=control_parent_dir,
        model_eval=control_model_eval,
        parent_eval=control_parent_eval,
        tokens=LAYOUT.path("tokens", split="heldout"),
        plugins=control_plugins,
    output:
        directory(LAYOUT.path("model", modelpath="seed-{tseed}/{control}")),
    log:
        f"{LOGS}/match_control/seed-{{tseed}}/{{control}}.log",
    benchmark:
        f"{BENCH}/match_control/seed-{{tseed}}/{{control}}.tsv"
    priority: 5
    conda:
        "../envs/compress.yaml"
    threads: THREADS["model"]
    resources:
        gpu=1,
        mem_mb=grow_mem(6000),
        runtime=120,
    params:
        kind=control_kind,
        matches=control_matches,
        evaluation=HELDOUT_EVALUATION,
        search=control_search,
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/match_control.py"
