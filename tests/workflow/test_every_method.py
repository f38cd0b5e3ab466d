"""Every registered compression method, and a composed variant, through the smoke DAG.

The unit tests run each method on tiny models of many families; this runs each one as the
workflow does (the generic compression rule, generation, scoring, the guards, the tables) on
the smoke preset's GPT-2 (``Conv1D``). The list comes from the registry, so a new method is
covered without editing this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from compfair.compression import load_builtin_methods

from .conftest import SMOKE, snakemake, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]
R = Path("results/smoke")
LEVEL = {"fraction": 0.5, "n_of_m": "2:4", "integer": 4}
UNSTRUCTURED = {"magnitude", "layerwise_magnitude", "random", "wanda", "sparsegpt"}


def test_every_method_runs_through_the_workflow(smoke_copy: Path) -> None:
    methods = load_builtin_methods()
    compression = {name: {"levels": [LEVEL[cls.level_kind]]} for name, cls in methods.items()}
    compression["rtn_student"] = {"method": "rtn", "levels": [8], "parent": "kd-0.50"}
    extra = write_config(
        smoke_copy,
        "every_method.yaml",
        {
            "compression": compression,
            # the intrinsic benchmarks have their own tests; leave them out to save time
            "intrinsic": {"crows_pairs": {"enabled": False}, "stereoset": {"enabled": False}},
        },
    )
    snakemake(smoke_copy, "--configfile", SMOKE, str(extra))
    models = pd.read_csv(smoke_copy / R / "tables/models.csv").set_index("model")
    comparisons = pd.read_csv(smoke_copy / R / "tables/comparisons.csv")
    made = models[
        models["method"].isin([*methods, "rtn"]) & ~models["family"].isin(["base", "control"])
    ]
    assert set(made["method"]) == set(methods)
    assert models.loc["rtn_student-8", "parent"] == "kd-0.50"
    teacher_size = models.loc["teacher", "n_parameters"]
    for model, row in made.iterrows():
        report = json.loads(
            next((smoke_copy / R / "models").glob(f"seed-*/{model}/compression.json")).read_text()
        )
        assert report["method"] == row["method"], model
        emt = comparisons[
            (comparisons["model"] == model) & (comparisons["metric"] == "expected_max_toxicity")
        ]
        assert set(emt["parent"]) == {row["parent"]}, model
        if row["method"] in UNSTRUCTURED or row["level"] == "2of4":
            assert row["sparsity"] == pytest.approx(0.5, abs=0.005), model
        if row["method"] in ("rtn", "gptq"):
            assert report["bits"] == int(row["level"]), model
    # depth pruning removes whole layers: fewer parameters than its parent
    assert models.loc["depth-0.50", "n_parameters"] < teacher_size
