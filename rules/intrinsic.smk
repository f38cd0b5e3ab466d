# Intrinsic bias: CrowS-Pairs and StereoSet scored with each model's own
# sentence likelihoods (no generation), one tidy table per model and training
# seed.


rule evaluate_intrinsic_bias:
    input:
        model="results/models/{modelpath}",
    output:
        "results/intrinsic/{modelpath}.csv",
    params:
        crows=intrinsic_set("crows_pairs"),
        stereoset=intrinsic_set("stereoset"),
        batch_size=config["intrinsic"]["batch_size"],
        n_boot=config["intrinsic"]["n_boot"],
        seed=config["seed"],
    log:
        "logs/evaluate_intrinsic_bias/{modelpath}.log",
    benchmark:
        "benchmarks/evaluate_intrinsic_bias/{modelpath}.tsv"
    threads: 1  # many small jobs: run them side by side rather than widen each
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/evaluate_intrinsic_bias.py"
