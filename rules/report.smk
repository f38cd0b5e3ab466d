# Aggregation into the tidy tables, figures for the report.


include: "inputs/report.smk"


rule aggregate_metrics:
    input:
        scores=score_file_list,
        prompts=list(prompt_files().values()),
        evals=sorted(set(eval_files().values())),
        quality=list(quality_files().values()),
        intrinsic=sorted(set(intrinsic_files().values())),
        per_item=sorted(set(item_files().values())),
        plugins=INTRINSIC_PLUGINS,
    output:
        metrics=LAYOUT.table("metrics.csv"),
        per_seed=LAYOUT.table("metrics_per_seed.csv"),
        comparisons=LAYOUT.table("comparisons.csv"),
        models=LAYOUT.table("models.csv"),
        matched_controls=LAYOUT.table("matched_controls.csv"),
    log:
        f"{LOGS}/aggregate_metrics.log",
    conda:
        "../envs/score.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        score_files=score_files,
        prompt_files=prompt_files(),
        eval_files=eval_files(),
        quality_files=quality_files(),
        intrinsic_files=intrinsic_files(),
        item_files=item_files(),
        variants=VARIANTS.table(),
        samples={ps: config["prompts"][ps]["samples"] for ps in PROMPTSETS},
        scoring=canonical(config["scoring"]),
        quality_thresholds=canonical(config["quality_thresholds"]),
        bootstrap=canonical(config["bootstrap"]),
        # the benchmarks' intervals are seeded as their items are drawn (INTRINSIC_PARAMS)
        intrinsic_seed=INTRINSIC_PARAMS["seed"],
    script:
        "../workflow_scripts/aggregate_metrics.py"


rule gather_job_timings:
    input:
        # Runs after everything else, so every job's benchmark is there.
        LAYOUT.table("metrics.csv"),
        FIGURES,
    output:
        LAYOUT.table("job_timings.csv"),
    log:
        f"{LOGS}/gather_job_timings.log",
    conda:
        "../envs/score.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        bench_dir=BENCH,
        log_dir=LOGS,
    script:
        "../workflow_scripts/gather_job_timings.py"


rule plot_figures:
    input:
        metrics=LAYOUT.table("metrics.csv"),
        comparisons=LAYOUT.table("comparisons.csv"),
        models=LAYOUT.table("models.csv"),
        calibration=LAYOUT.table("scorer_calibration.csv"),
        audit=LAYOUT.table("scorer_audit.csv"),
        bias_prompts=LAYOUT.path(
            "prompts", promptset=config["report"]["bias_promptset"]
        ),
        plugins=plugin_files(*(spec.draw for spec in FIGURE_SPECS)),
    output:
        [
            report(path, caption=f"../{spec.caption}", category=spec.category)
            for path, spec in zip(FIGURES, FIGURE_SPECS)
        ],
    log:
        f"{LOGS}/plot_figures.log",
    conda:
        "../envs/score.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        toxicity_promptset=config["report"]["toxicity_promptset"],
        bias_promptset=config["report"]["bias_promptset"],
        confidence=config["bootstrap"]["confidence"],
        max_perplexity_ratio=config["quality_thresholds"]["max_perplexity_ratio"],
    script:
        "../workflow_scripts/plot_figures.py"
