# Input functions and params of the matched controls (rules/control.smk); shared helpers are in
# rules/common.smk. Only functions here (snakemake --lint: no rules beside them).


def control_parent_dir(wildcards):
    """The folder of the parent of ``{control}`` (its model's parent) for ``{tseed}``."""
    parent = VARIANTS[wildcards.control].parent
    return LAYOUT.path("model", modelpath=stored_path(parent, wildcards.tseed))


def control_model_eval(wildcards):
    """The evaluation of the model ``{control}`` matches, for ``{tseed}``."""
    model = VARIANTS[wildcards.control].matches
    return LAYOUT.path("eval", modelpath=stored_path(model, wildcards.tseed))


def control_parent_eval(wildcards):
    parent = VARIANTS[wildcards.control].parent
    return LAYOUT.path("eval", modelpath=stored_path(parent, wildcards.tseed))


def control_kind(wildcards):
    return VARIANTS[wildcards.control].method


def control_plugins(wildcards):
    return plugin_files(get_method(control_kind(wildcards)))


def control_matches(wildcards):
    return VARIANTS[wildcards.control].matches


def control_seed(tseed, draw):
    """Draw 1's seed is the training seed (as before draws existed); draw d another one."""
    return tseed if draw == 1 else tseed + 10007 * (draw - 1)


def control_search(wildcards):
    """The strength search of ``{control}``: its kind's bounds, tolerance, tries and seed."""
    settings = config["controls"]
    kind = VARIANTS[wildcards.control].method
    return {
        "bounds": settings["bounds"][kind],
        "tolerance": settings["tolerance"],
        "max_tries": settings["max_tries"],
        "seed": control_seed(int(wildcards.tseed), VARIANTS[wildcards.control].value),
    }
