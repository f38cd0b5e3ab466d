# Model compression and fairness: the whole study as one DAG.
#
#   data -> teacher fine-tuning -> distillation and compression -> generation
#        -> toxicity and bias scoring -> aggregation -> figures and report
#
# Every model of the study (base, teacher, students, compressed variants,
# references) is a variant with a parent (compfair.variants); everything a
# study makes goes under results/<study>/.
#
# The experiment is configured in config.yaml (or a preset given with
# --configfile presets/<name>.yaml); the machine in profiles/<site>/.

import os

from snakemake.utils import min_version

min_version("9.0")


# The repository's config.yaml, wherever --directory puts the run; presets
# given with --configfile are layered over it.
configfile: os.path.join(workflow.basedir, "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/teacher.smk"
include: "rules/distill.smk"
include: "rules/compress.smk"
include: "rules/control.smk"
include: "rules/generate.smk"
include: "rules/score.smk"
include: "rules/quality.smk"
include: "rules/calibration.smk"
include: "rules/report.smk"


# Local jobs hand over to a worker that imports torch and transformers once
# (compfair/worker.py), one worker for each thread count a job may have (jobs without
# `threads:` have one; Snakemake caps threads at --cores); they start importing while
# the first jobs are scheduled.
onstart:
    if workflow.local_exec:
        warm_up({1, *(min(t, workflow.cores) for t in THREADS.values())})


rule all:
    default_target: True
    input:
        LAYOUT.table("metrics.csv"),
        FIGURES,
        LAYOUT.table("job_timings.csv"),
