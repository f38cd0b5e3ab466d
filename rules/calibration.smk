# Calibration: how well the toxicity scorer agrees with the Perspective scores
# stored with RealToxicityPrompts, on the prompt set whose toxicity is reported.


rule calibrate_scorer:
    input:
        expand(
            "results/data/prompts/{promptset}.jsonl",
            promptset=config["report"]["toxicity_promptset"],
        ),
    output:
        "results/tables/scorer_calibration.csv",
    params:
        scorer=config["scoring"]["toxicity_scorer"],
        options=config["scoring"]["scorer_options"],
        threshold=config["scoring"]["toxicity_threshold"],
    log:
        "logs/calibrate_scorer.log",
    benchmark:
        "benchmarks/calibrate_scorer.tsv"
    resources:
        gpu=scorer_gpus,
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/calibrate_scorer.py"
