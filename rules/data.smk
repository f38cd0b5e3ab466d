# Data: the base model, the reference models, the corpus and the prompt sets.


include: "inputs/data.smk"


rule import_base_model:
    output:
        directory(LAYOUT.path("model", modelpath="base")),
    log:
        f"{LOGS}/import_base_model.log",
    benchmark:
        f"{BENCH}/import_base_model.tsv"
    conda:
        "../envs/compress.yaml"
    threads: THREADS["train"]
    resources:
        mem_mb=grow_mem(6000),
        runtime=30,
    params:
        spec=canonical(config["base_model"]),
        seed=config["seed"],
        config_key="base_model",
        torch_threads=THREADS["train"],
    script:
        "../workflow_scripts/import_base_model.py"


rule import_reference_model:
    output:
        directory(LAYOUT.path("model", modelpath="reference/{reference}")),
    log:
        f"{LOGS}/import_reference_model/{{reference}}.log",
    benchmark:
        f"{BENCH}/import_reference_model/{{reference}}.tsv"
    conda:
        "../envs/compress.yaml"
    threads: THREADS["train"]
    resources:
        mem_mb=grow_mem(6000),
        runtime=30,
    params:
        spec=reference_spec,
        seed=config["seed"],
        config_key=reference_key,
        torch_threads=THREADS["train"],
    script:
        "../workflow_scripts/import_base_model.py"


rule prepare_corpus:
    output:
        train=LAYOUT.path("corpus", split="train"),
        heldout=LAYOUT.path("corpus", split="heldout"),
    log:
        f"{LOGS}/prepare_corpus.log",
    conda:
        "../envs/compress.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        path=config["corpus"]["path"],
        heldout_fraction=config["corpus"]["heldout_fraction"],
        max_documents=config["corpus"]["max_documents"],
        min_chars=config["corpus"]["min_chars"],
        seed=config["seed"],
    script:
        "../workflow_scripts/prepare_corpus.py"


rule tokenize_corpus:
    input:
        corpus=LAYOUT.path("corpus"),
        model=LAYOUT.path("model", modelpath="base"),
    output:
        LAYOUT.path("tokens"),
    log:
        f"{LOGS}/tokenize_corpus/{{split}}.log",
    conda:
        "../envs/compress.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        max_tokens=split_max_tokens,
    script:
        "../workflow_scripts/tokenize_corpus.py"


checkpoint prepare_prompts:
    input:
        plugins=promptset_plugins,
    output:
        LAYOUT.path("prompts"),
    log:
        f"{LOGS}/prepare_prompts/{{promptset}}.log",
    conda:
        "../envs/score.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        spec=promptset_spec,
        seed=config["seed"],
    script:
        "../workflow_scripts/prepare_prompts.py"
