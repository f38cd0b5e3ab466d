"""The paper preset: its DAG resolves with the hub loaders pointed at local
copies in the hub formats, and without internet it fails at once, naming the
resource and the config key that points at a local copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import REPO, planned_jobs, requested_gpus, snakemake, write_config

pytestmark = pytest.mark.workflow

PAPER = str(REPO / "presets" / "paper.yaml")
FIXTURES = REPO / "tests" / "fixtures"
LOCAL_COPIES = {
    "prompts": {
        "rtp": {
            "source": "rtp_hub",
            "path": str(FIXTURES / "rtp_hub.jsonl"),
            "n": 2,
            "samples": 25,
        },
        "rtp_nontoxic": {
            "source": "rtp_hub",
            "path": str(FIXTURES / "rtp_hub.jsonl"),
            "n": 2,
            "samples": 25,
        },
        "bold": {"source": "bold_hub", "path": str(FIXTURES / "bold_hub.jsonl"), "samples": 10},
    },
    "intrinsic": {
        "crows_pairs": {
            "source": "jsonl",
            "path": str(FIXTURES / "intrinsic" / "crows_pairs_hub.jsonl"),
        },
        "stereoset": {
            "source": "jsonl",
            "path": str(FIXTURES / "intrinsic" / "stereoset_hub.jsonl"),
        },
    },
}


def test_paper_dag_resolves_on_local_copies(tmp_path: Path) -> None:
    local = write_config(tmp_path, "local.yaml", LOCAL_COPIES)
    args = ("--configfile", PAPER, str(local))
    # Prepare the prompts for real (the hub-format loaders on the fixtures),
    # so that the shards behind the checkpoint are known to the dry run.
    snakemake(tmp_path, *args, "--until", "prepare_prompts")
    assert (tmp_path / "results/paper/data/prompts/rtp.jsonl").stat().st_size > 0
    assert (tmp_path / "results/paper/data/prompts/bold.jsonl").stat().st_size > 0
    dry_run = snakemake(tmp_path, *args, "-n")
    jobs = planned_jobs(dry_run)
    # base, teacher, 4 students, 51 compressed variants, 48 matched controls (3 draws of
    # noise and of random pruning for 8 models), gpt2 and distilgpt2
    seeds, models, promptsets = 3, 2 + 4 + 51 + 48 + 2, 4
    assert jobs["compress_model"] == 51
    assert jobs["match_control"] == 48
    assert jobs["distill_student"] == 4
    assert jobs["import_reference_model"] == 2
    assert jobs["finetune_teacher"] == 1  # retrain: false
    assert jobs["generate_continuations"] == seeds * models * promptsets  # one shard each here
    assert "gather_scores" not in jobs and "gather_generations" not in jobs  # one shard: no copy
    assert jobs["evaluate_model"] == models
    assert jobs["aggregate_metrics"] == 1
    # Model jobs ask for a GPU; Detoxify makes scoring one of them; tables do not.
    gpus = requested_gpus(dry_run)
    for rule in (
        "finetune_teacher",
        "generate_continuations",
        "score_continuations",
        "calibrate_scorer",
        "evaluate_model",
    ):
        assert gpus[rule] == {1}, rule
    for rule in ("aggregate_metrics", "plot_figures"):
        assert gpus[rule] == {0}, rule


def test_paper_preset_offline_fails_naming_the_resource(tmp_path: Path) -> None:
    target = "results/paper/data/prompts/rtp.jsonl"
    proc = snakemake(tmp_path, target, "--configfile", PAPER, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/paper/prepare_prompts/rtp.log").read_text()
    assert "allenai/real-toxicity-prompts" in log
    assert "prompts.rtp.path" in log
    assert not (tmp_path / target).exists()
