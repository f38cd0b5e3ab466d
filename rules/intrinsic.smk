# Intrinsic bias: every enabled registered benchmark (compfair/intrinsic/:
# CrowS-Pairs with whole-sentence and conditional scoring, StereoSet
# intrasentence, plug-ins) scored with each model's own likelihoods:
# one tidy table per model and training seed, and its per-item values for the
# paired comparisons with the parent.


rule evaluate_intrinsic_bias:
    input:
        model=f"{RESULTS}/models/{{modelpath}}",
    output:
        table=f"{RESULTS}/intrinsic/{{modelpath}}.csv",
        per_item=f"{RESULTS}/intrinsic_items/{{modelpath}}.csv",
    log:
        f"{LOGS}/evaluate_intrinsic_bias/{{modelpath}}.log",
    benchmark:
        f"{BENCH}/evaluate_intrinsic_bias/{{modelpath}}.tsv"
    conda:
        "../envs/compress.yaml"
    threads: THREADS["model"]
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    params:
        specs=INTRINSIC_SPECS,
        plugins=config["plugins"],
        batch_size=config["intrinsic"]["batch_size"],
        n_boot=config["bootstrap"]["n_resamples"],
        confidence=config["bootstrap"]["confidence"],
        seed=config["seed"],
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/evaluate_intrinsic_bias.py"
