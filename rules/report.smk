# Aggregation into the tidy tables, figures for the report.


rule aggregate_metrics:
    input:
        scores=all_scores(),
        prompts=all_prompts(),
        evals=all_evals(),
        quality=all_quality(),
        intrinsic=all_intrinsic(),
    output:
        metrics="results/tables/metrics.csv",
        per_seed="results/tables/metrics_per_seed.csv",
    params:
        seeds=SEEDS,
        models=MODELS,
        promptsets=PROMPTSETS,
        eval_paths={(s, m): eval_path(m, s) for s in SEEDS for m in MODELS},
        intrinsic_paths={(s, m): intrinsic_path(m, s) for s in SEEDS for m in MODELS} if INTRINSIC else {},
        model_info=model_info(),
        scoring=config["scoring"],
        quality_thresholds=config["quality_thresholds"],
        bootstrap=config["bootstrap"],
    log:
        "logs/aggregate_metrics.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/aggregate_metrics.py"


rule gather_benchmarks:
    input:
        # Runs after everything else, so every job's benchmark is there.
        "results/tables/metrics.csv",
        FIGURES,
    output:
        "results/tables/benchmarks.csv",
    params:
        bench_dir="benchmarks",
    log:
        "logs/gather_benchmarks.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/gather_benchmarks.py"


rule plot_figures:
    input:
        metrics="results/tables/metrics.csv",
        bias_prompts=f"results/data/prompts/{config['report']['bias_promptset']}.jsonl",
        calibration="results/tables/scorer_calibration.csv",
    output:
        report(
            "results/figures/metrics_vs_sparsity.png",
            caption="../report/metrics_vs_sparsity.rst",
            category="Toxicity",
        ),
        report(
            "results/figures/distillation.png",
            caption="../report/distillation.rst",
            category="Toxicity",
        ),
        report(
            "results/figures/tradeoff.png",
            caption="../report/tradeoff.rst",
            category="Quality",
        ),
        report(
            "results/figures/bold_heatmap.png",
            caption="../report/bold_heatmap.rst",
            category="Bias",
        ),
        report(
            "results/figures/sentiment_by_group.png",
            caption="../report/sentiment_by_group.rst",
            category="Bias",
        ),
        report(
            "results/figures/scorer_calibration.png",
            caption="../report/scorer_calibration.rst",
            category="Quality",
        ),
    params:
        toxicity_promptset=config["report"]["toxicity_promptset"],
        bias_promptset=config["report"]["bias_promptset"],
    log:
        "logs/plot_figures.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/plot_figures.py"
