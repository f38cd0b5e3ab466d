# Calibration and audit of the toxicity scorer: its agreement with the
# Perspective scores stored with RealToxicityPrompts (on every text of the
# toxicity prompt set's source that has them), and what it says of neutral
# sentences that name each group of the bias prompts.


rule calibrate_scorer:
    input:
        plugins=SCORER_PLUGINS,
    output:
        table=LAYOUT.table("scorer_calibration.csv"),
        threshold=LAYOUT.table("scorer_threshold.json"),
    log:
        f"{LOGS}/calibrate_scorer.log",
    benchmark:
        f"{BENCH}/calibrate_scorer.tsv"
    conda:
        "../envs/score.yaml"
    threads: THREADS["model"]
    resources:
        gpu=scorer_gpus,
        mem_mb=2000,
        runtime=30,
    params:
        source=canonical(config["prompts"][config["report"]["toxicity_promptset"]]),
        scorer=config["scoring"]["toxicity_scorer"],
        options=canonical(config["scoring"]["scorer_options"]),
        threshold=config["scoring"]["toxicity_threshold"],
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/calibrate_scorer.py"


rule audit_scorer:
    input:
        prompts=LAYOUT.path("prompts", promptset=config["report"]["bias_promptset"]),
        plugins=SCORER_PLUGINS,
    output:
        table=LAYOUT.table("scorer_audit.csv"),
        spread=LAYOUT.table("scorer_audit_spread.csv"),
        sentences=LAYOUT.table("scorer_audit_sentences.csv"),
    log:
        f"{LOGS}/audit_scorer.log",
    benchmark:
        f"{BENCH}/audit_scorer.tsv"
    conda:
        "../envs/score.yaml"
    threads: THREADS["model"]
    resources:
        gpu=scorer_gpus,
        mem_mb=2000,
        runtime=30,
    params:
        scorer=config["scoring"]["toxicity_scorer"],
        options=canonical(config["scoring"]["scorer_options"]),
        threshold=config["scoring"]["toxicity_threshold"],
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/audit_scorer.py"
