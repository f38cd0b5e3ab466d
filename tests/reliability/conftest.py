"""Fixtures of the reliability tests: a tiny model folder and the smoke run to compare with.

``smoke_run`` is the workflow tests' session fixture (one uninterrupted smoke
run). Imported here it is a fixture of its own: run with ``-m slow`` (as CI
does) it is made once, for the kill test alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.conftest import smoke_run  # noqa: F401  (re-exported fixture)

TINY = {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 32}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete model folder: a 1-layer random GPT-2 with GPT-2's tokenizer."""
    from compfair.models import import_base_model

    folder = tmp_path_factory.mktemp("tiny") / "model"
    import_base_model({"source": "tiny_gpt2", "tiny": TINY}, folder, seed=0)
    return folder
