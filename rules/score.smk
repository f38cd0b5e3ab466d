# Scoring: toxicity and sentiment of every continuation (per shard, then
# gathered). Per model, one job: held-out perplexity, size and sparsity, and
# intrinsic bias on every enabled registered benchmark (compfair/intrinsic/:
# CrowS-Pairs with whole-sentence and conditional scoring, StereoSet
# intrasentence, plug-ins) from the model's own likelihoods, with per-item
# values for the paired comparisons with the parent. One process, because
# importing torch and transformers costs more than a small model's evaluation.


include: "inputs/score.smk"


rule score_continuations:
    input:
        generations=LAYOUT.path("generation_shard"),
        prompts=LAYOUT.path("prompts"),
        plugins=SCORER_PLUGINS,
    output:
        LAYOUT.path("score_shard"),
    log:
        f"{LOGS}/score_continuations/seed-{{seed}}/{{model}}/{{promptset}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/score_continuations/seed-{{seed}}/{{model}}/{{promptset}}/shard-{{shard}}.tsv"
    conda:
        "../envs/score.yaml"
    threads: THREADS["model"]
    resources:
        gpu=scorer_gpus,
        mem_mb=grow_mem(2000),
        runtime=30,
    params:
        scorer=config["scoring"]["toxicity_scorer"],
        options=canonical(config["scoring"]["scorer_options"]),
        regard_model=regard_model_for,
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/score_continuations.py"


rule gather_scores:
    input:
        score_shards,
    output:
        LAYOUT.path("gathered_scores"),
    log:
        f"{LOGS}/gather_scores/seed-{{seed}}/{{model}}/{{promptset}}.log",
    conda:
        "../envs/score.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/gather_shards.py"


rule evaluate_model:
    input:
        model=LAYOUT.path("model"),
        tokens=LAYOUT.path("tokens", split="heldout"),
        plugins=INTRINSIC_PLUGINS,
    output:
        **INTRINSIC_OUTPUTS,
        eval=LAYOUT.path("eval"),
    log:
        f"{LOGS}/evaluate_model/{{modelpath}}.log",
    benchmark:
        f"{BENCH}/evaluate_model/{{modelpath}}.tsv"
    conda:
        "../envs/compress.yaml"
    threads: THREADS["model"]
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    params:
        settings=HELDOUT_EVALUATION,
        intrinsic=INTRINSIC_PARAMS,
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/evaluate_model.py"
