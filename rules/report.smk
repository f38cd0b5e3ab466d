# Aggregation into one tidy table, figures for the report.


rule aggregate_metrics:
    input:
        scores=all_scores(),
        prompts=all_prompts(),
        evals=all_evals(),
    output:
        "results/tables/metrics.csv",
    params:
        models=MODELS,
        promptsets=PROMPTSETS,
        scoring=config["scoring"],
    log:
        "logs/aggregate_metrics.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/aggregate_metrics.py"


rule plot_figures:
    input:
        metrics="results/tables/metrics.csv",
        prompts=all_prompts(),
    output:
        report(
            "results/figures/toxicity_vs_sparsity.png",
            caption="../report/toxicity_vs_sparsity.rst",
            category="Toxicity",
        ),
        report(
            "results/figures/sentiment_by_group.png",
            caption="../report/sentiment_by_group.rst",
            category="Bias",
        ),
        report(
            "results/figures/perplexity_vs_toxicity.png",
            caption="../report/perplexity_vs_toxicity.rst",
            category="Quality",
        ),
    params:
        toxicity_promptset=config["report"]["toxicity_promptset"],
    log:
        "logs/plot_figures.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/plot_figures.py"
