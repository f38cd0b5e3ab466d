"""What a config change reruns in a finished smoke study, planned with dry runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SMOKE, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

#: The jobs that read the tables' settings, and those that follow from the tables.
TABLES_ONLY = {"aggregate_metrics": 1, "plot_figures": 1, "gather_job_timings": 1, "all": 1}


@pytest.mark.parametrize("bootstrap", [{"n_resamples": 150}, {"confidence": 0.9}])
def test_bootstrap_settings_rerun_only_the_tables(smoke_run: Path, bootstrap: dict) -> None:
    """The intrinsic benchmarks' intervals are computed by the tables from the per-item
    values, so no held-out evaluation (evaluate_model) reruns for a bootstrap setting."""
    extra = write_config(smoke_run, "bootstrap.yaml", {"bootstrap": bootstrap})
    jobs = planned_jobs(snakemake(smoke_run, "--configfile", SMOKE, str(extra), "-n"))
    assert jobs == TABLES_ONLY, jobs
