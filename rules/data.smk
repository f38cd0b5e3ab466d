# Data: the base model, the corpus and the prompt sets.


rule import_base_model:
    output:
        directory("results/models/base"),
    params:
        spec=config["base_model"],
        seed=config["seed"],
    log:
        "logs/import_base_model.log",
    benchmark:
        "benchmarks/import_base_model.tsv"
    threads: 2
    resources:
        mem_mb=grow_mem(6000),
        runtime=30,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/import_base_model.py"


rule import_reference_model:
    output:
        directory("results/models/reference/{reference}"),
    params:
        spec=reference_spec,
        seed=config["seed"],
    log:
        "logs/import_reference_model/{reference}.log",
    benchmark:
        "benchmarks/import_reference_model/{reference}.tsv"
    threads: 2
    resources:
        mem_mb=grow_mem(6000),
        runtime=30,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/import_base_model.py"


rule prepare_corpus:
    output:
        train="results/data/corpus/train.jsonl",
        heldout="results/data/corpus/heldout.jsonl",
    params:
        path=resolve_path(config["corpus"]["path"]),
        heldout_fraction=config["corpus"]["heldout_fraction"],
        max_documents=config["corpus"]["max_documents"],
        min_chars=config["corpus"]["min_chars"],
        seed=config["seed"],
    log:
        "logs/prepare_corpus.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/prepare_corpus.py"


rule tokenize_corpus:
    input:
        corpus="results/data/corpus/{split}.jsonl",
        model="results/models/base",
    output:
        "results/data/tokens/{split}.safetensors",
    params:
        max_tokens=split_max_tokens,
    log:
        "logs/tokenize_corpus/{split}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/compress.yaml"
    script:
        "../workflow_scripts/tokenize_corpus.py"


checkpoint prepare_prompts:
    output:
        "results/data/prompts/{promptset}.jsonl",
    params:
        spec=promptset_spec,
        seed=config["seed"],
        repo_root=str(REPO),
    log:
        "logs/prepare_prompts/{promptset}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/score.yaml"
    script:
        "../workflow_scripts/prepare_prompts.py"
