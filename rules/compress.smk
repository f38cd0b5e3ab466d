# Compression: every pruning and quantization variant, whatever its method
# (compfair.compression.methods and the config's plugins), through one rule:
# the parent folder in, a verified compressed folder out.


include: "inputs/compress.smk"


rule compress_model:
    input:
        unpack(compress_inputs),
    output:
        directory(LAYOUT.path("model", modelpath="seed-{tseed}/{variant}")),
    log:
        f"{LOGS}/compress_model/seed-{{tseed}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/compress_model/seed-{{tseed}}/{{variant}}.tsv"
    priority: 5  # every later job of its model waits for it
    conda:
        "../envs/compress.yaml"
    threads: THREADS["model"]
    resources:
        gpu=1,
        mem_mb=grow_mem(4000),
        runtime=60,
    params:
        spec=variant_spec,
        seed=tseed_int,
        calibration=canonical(config["calibration"]),
        torch_threads=THREADS["model"],
    script:
        "../workflow_scripts/compress_model.py"
