# Input functions and params of compression (rules/compress.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def compress_inputs(wildcards):
    """The parent folder and, for a method that needs it, the calibration tokens."""
    method = get_method(VARIANTS[wildcards.variant].method)
    inputs = {"parent": parent_dir(wildcards), "plugins": plugin_files(method)}
    if method.needs_calibration:
        inputs["tokens"] = LAYOUT.path("tokens", split="train")
    return inputs
