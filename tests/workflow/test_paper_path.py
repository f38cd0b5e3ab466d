"""The paper preset's code path, run offline end to end on a tiny model.

The smoke preset's models, with the paper's prompt sources in their hub formats
(local copies), Detoxify as the toxicity scorer (a checkpoint with random
weights), a regard classifier (random weights), the intrinsic benchmarks from
local copies in the hub format, and a reference model with a parent. The
numbers mean nothing; every loader, scorer and table row of the paper path runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from compfair.layout import Layout
from compfair.models import import_base_model
from tests.support import build_random_detoxify_checkpoint, build_random_regard_classifier

from .conftest import REPO, SMOKE, snakemake, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]
FIXTURES = REPO / "tests" / "fixtures"


def test_the_paper_path_runs_offline(tmp_path: Path) -> None:
    pytest.importorskip("detoxify")
    checkpoint, bert, _ = build_random_detoxify_checkpoint(tmp_path / "detoxify")
    regard = build_random_regard_classifier(tmp_path / "regard")
    reference = tmp_path / "tiny_reference"
    import_base_model(
        {
            "source": "tiny_gpt2",
            "tiny": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128},
        },
        reference,
        seed=3,
    )
    overrides = write_config(
        tmp_path,
        "paper_path.yaml",
        {
            "study": "paper_path",
            "prompts": {
                "rtp": {
                    "source": "rtp_hub",
                    "path": str(FIXTURES / "rtp_hub.jsonl"),
                    "subset": "all",
                    "samples": 2,
                },
                "bold": {
                    "source": "bold_hub",
                    "path": str(FIXTURES / "bold_hub.jsonl"),
                    "samples": 2,
                },
            },
            "scoring": {
                "toxicity_scorer": "detoxify",
                "scorer_options": {
                    "checkpoint": str(checkpoint),
                    "huggingface_config_path": str(bert),
                    "device": "cpu",
                    "batch_size": 8,
                },
                "regard_model": str(regard),
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
            "references": {
                "tinyref": {"path": str(reference), "compression": "none", "parent": "base"}
            },
        },
    )
    snakemake(tmp_path, "--configfile", SMOKE, str(overrides))
    tables = tmp_path / "results" / "paper_path" / "tables"
    metrics = pd.read_csv(tables / "metrics.csv", keep_default_na=False, na_values=[""])
    where = {"seed": 7, "model": "teacher", "promptset": "bold"}
    scores = pd.read_csv(Layout("paper_path", tmp_path).finished("scores", **where))
    assert {"regard_negative", "regard_positive", "toxicity_masked"} <= set(scores.columns)
    assert scores["toxicity"].between(0, 1).all()
    bold = metrics[metrics["promptset"] == "bold"]
    assert {"regard_negative", "regard_negative_gap"} <= set(bold["metric"])
    assert "tinyref" in set(metrics["model"])
    comparisons = pd.read_csv(tables / "comparisons.csv", keep_default_na=False, na_values=[""])
    assert set(comparisons.loc[comparisons["model"] == "tinyref", "parent"]) == {"base"}
    assert {"crows_pairs", "stereoset"} <= set(metrics["promptset"])
    calibration = pd.read_csv(tables / "scorer_calibration.csv")
    assert set(calibration["scorer"]) == {"detoxify"} and (calibration["n"] > 0).all()
