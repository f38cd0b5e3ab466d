"""The table-only modules start without torch: many small jobs import them."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Modules behind the jobs that only read and write tables and figures.
LIGHT = [
    "compfair.aggregate",
    "compfair.benchmarks",
    "compfair.calibration",
    "compfair.config",
    "compfair.data",
    "compfair.io",
    "compfair.metrics",
    "compfair.plots",
    "compfair.quality",
    "compfair.scoring",
    "compfair.scoring.scorers",
    # The registries the Snakefile reads to plan a study.
    "compfair.variants",
    "compfair.compression",
    "compfair.data.sources",
    "compfair.metric_rows",
    "compfair.result_files",
]


@pytest.mark.parametrize("module", LIGHT)
def test_light_module_does_not_import_torch(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing {module} also imports {out}"
