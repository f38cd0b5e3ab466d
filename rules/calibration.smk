# Calibration: how well the toxicity scorer agrees with the Perspective scores
# stored with RealToxicityPrompts, on the prompt set whose toxicity is reported.


rule calibrate_scorer:
    input:
        f"{RESULTS}/data/prompts/{config['report']['toxicity_promptset']}.jsonl",
    output:
        f"{RESULTS}/tables/scorer_calibration.csv",
    params:
        scorer=config["scoring"]["toxicity_scorer"],
        options=canonical(config["scoring"]["scorer_options"]),
        threshold=config["scoring"]["toxicity_threshold"],
        torch_threads=THREADS["model"],
    log:
        f"{LOGS}/calibrate_scorer.log",
    benchmark:
        f"{BENCH}/calibrate_scorer.tsv"
    threads: THREADS["model"]
    resources:
        gpu=scorer_gpus,
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/calibrate_scorer.py"
