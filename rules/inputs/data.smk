# Input functions and params of the data stage (rules/data.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def reference_spec(wildcards):
    return {"source": "hf", "path": REFERENCES[wildcards.reference]["path"]}


def reference_key(wildcards):
    return f"references.{wildcards.reference}"


def promptset_plugins(wildcards):
    return plugin_files(get_source(config["prompts"][wildcards.promptset]["source"]))


def promptset_spec(wildcards):
    """The loader options of a prompt set: the keys that are set, less the sampler's K."""
    return canonical(
        {
            k: v
            for k, v in config["prompts"][wildcards.promptset].items()
            if v is not None and k != "samples"
        }
    )


def split_max_tokens(wildcards):
    return config["corpus"][f"max_{wildcards.split}_tokens"]
