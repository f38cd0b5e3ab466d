"""The repository's config.yaml is the base wherever --directory puts the run."""

from __future__ import annotations

from pathlib import Path

import yaml

from .conftest import planned_jobs, requested_gpus, snakemake, write_config


def test_default_config_loads_in_another_directory(tmp_path: Path) -> None:
    default = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    jobs = planned_jobs(snakemake(tmp_path, "-n"))
    assert jobs["compress_model"] == sum(len(e["levels"]) for e in default["compression"].values())
    assert jobs["finetune_teacher"] == 1
    # one student per depth, and its no-distillation control
    students = len(default["distillation"]["students"])
    assert jobs["distill_student"] == students * (
        2 if default["distillation"]["no_kd_control"] else 1
    )


def test_a_preset_is_layered_over_it(tmp_path: Path) -> None:
    preset = write_config(
        tmp_path, "preset.yaml", {"compression": {"magnitude": {"levels": [0.2]}}}
    )
    default = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    jobs = planned_jobs(snakemake(tmp_path, "--configfile", str(preset), "-n"))
    others = sum(len(e["levels"]) for k, e in default["compression"].items() if k != "magnitude")
    assert (
        jobs["compress_model"] == 1 + others
    )  # magnitude-0.20 and the other methods of config.yaml
    # everything else still comes from config.yaml: the SmolLM2 import and both prompt sets
    assert jobs["import_base_model"] == 1
    assert not (tmp_path / "results").exists()


def test_the_offline_scorer_asks_for_no_gpu(tmp_path: Path) -> None:
    gpus = requested_gpus(snakemake(tmp_path, "-n"))
    assert gpus["calibrate_scorer"] == {0}  # profanity_check is a linear model
    assert gpus["finetune_teacher"] == gpus["evaluate_model"] == {1}
