# Input functions and params of distillation (rules/distill.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def student_spec(wildcards):
    """What the distillation job runs: variant_spec, plus, for a share of the layers chosen
    by block influence, the rule and the calibration it measures on (left out otherwise,
    so that students of the default even spread keep their params)."""
    spec = variant_spec(wildcards)
    selection = config["distillation"]["layer_selection"]
    if selection == "even" or isinstance(spec["level"], (str, list)):
        return spec
    return canonical(
        {**spec, "layer_selection": selection, "calibration": config["calibration"]}
    )
