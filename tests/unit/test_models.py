"""Tests for compfair.models: import, load/save, block and weight inspection."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase
from transformers.pytorch_utils import Conv1D

from compfair import io, models
from compfair.io import InputError
from compfair.models import (
    count_parameters,
    decoder_blocks,
    import_base_model,
    load_model,
    prunable_weights,
    save_model,
)
from tests.support import LLAMA_NAMES

TINY = {"source": "tiny_gpt2", "tiny": {"n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 32}}


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_import_tiny_gpt2_folder_reloads_with_plain_from_pretrained(tiny_gpt2_dir: Path) -> None:
    names = {p.name for p in tiny_gpt2_dir.iterdir()}
    assert {"config.json", "model.safetensors", "provenance.json"} <= names
    assert not any(n.endswith(".bin") for n in names)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    assert model.config.model_type == "gpt2"
    assert model.config.n_layer == 4 and model.config.n_embd == 32
    assert model.config.vocab_size == 50257 == len(tokenizer)
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    prov = json.loads((tiny_gpt2_dir / "provenance.json").read_text())
    assert prov["source"] == "tiny_gpt2" and prov["seed"] == 0
    assert prov["n_parameters"] == count_parameters(model)
    assert "torch" in prov["packages"]
    # nothing left beside the folder by the atomic write
    assert [p.name for p in tiny_gpt2_dir.parent.iterdir()] == [tiny_gpt2_dir.name]


def test_import_tiny_gpt2_is_seeded(tmp_path: Path) -> None:
    import_base_model(TINY, tmp_path / "a", seed=1)
    import_base_model(TINY, tmp_path / "b", seed=1)
    import_base_model(TINY, tmp_path / "c", seed=2)
    a, b, c = (AutoModelForCausalLM.from_pretrained(tmp_path / n) for n in "abc")
    assert a.config.n_layer == 2 and a.config.n_embd == 16
    assert _same_weights(a, b)
    assert not torch.equal(
        a.transformer.h[0].attn.c_attn.weight, c.transformer.h[0].attn.c_attn.weight
    )


def test_import_failure_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_write(*args: object, **kwargs: object) -> None:
        folder = args[2]
        (Path(folder) / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(models, "write_model_folder", half_write)
    with pytest.raises(OSError, match="disk full"):
        import_base_model(TINY, tmp_path / "base", seed=0)
    assert list(tmp_path.iterdir()) == []


def test_import_bad_specs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="base_model.source"):
        import_base_model({"source": "gguf_magic"}, tmp_path / "x", seed=0)
    with pytest.raises(InputError, match="base_model.tiny"):
        import_base_model({"source": "tiny_gpt2", "tiny": {"n_layer": 2}}, tmp_path / "x", seed=0)
    with pytest.raises(InputError, match="base_model.path"):
        import_base_model({"source": "hf"}, tmp_path / "x", seed=0)
    assert not (tmp_path / "x").exists()


def test_import_hf_local_folder_copies_weights(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    import_base_model({"source": "hf", "path": str(tiny_gpt2_dir)}, tmp_path / "base", seed=0)
    original, _ = load_model(tiny_gpt2_dir)
    copied, tokenizer = load_model(tmp_path / "base")
    assert _same_weights(original, copied)
    assert tokenizer.encode("Hello world") == [15496, 995]
    prov = json.loads((tmp_path / "base" / "provenance.json").read_text())
    assert prov["source"] == "hf" and prov["path"] == str(tiny_gpt2_dir.resolve())


def test_import_hf_truncated_local_folder(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_gpt2_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"broken.*missing weights"):
        import_base_model({"source": "hf", "path": str(broken)}, tmp_path / "base", seed=0)
    (broken / "config.json").unlink()
    with pytest.raises(InputError, match=r"missing config.json and weights"):
        import_base_model({"source": "hf", "path": str(broken)}, tmp_path / "base", seed=0)
    with pytest.raises(InputError, match="not found"):
        import_base_model({"source": "hf", "path": str(tmp_path / "nope")}, tmp_path / "base", 0)
    assert not (tmp_path / "base").exists()


def test_import_hf_hub_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Offline, the hub client retries for ~20 s before failing with this OSError;
    # raise it at once.
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(models.AutoConfig, "from_pretrained", offline)
    with pytest.raises(InputError) as err:
        import_base_model({"source": "hf", "path": "someorg/somemodel"}, tmp_path / "b", 0)
    assert "someorg/somemodel" in str(err.value)
    assert "base_model.path" in str(err.value) and "local copy" in str(err.value)
    assert not (tmp_path / "b").exists()


def test_load_model_fp32_eval_left_padding(tiny_llama_dir: Path) -> None:
    model, tokenizer = load_model(tiny_llama_dir)
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"
    assert type(model).__name__ == "LlamaForCausalLM"


def test_load_model_malformed_folder(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model folder not found"):
        load_model(tmp_path / "absent")
    bad = tmp_path / "bad"
    shutil.copytree(tiny_gpt2_dir, bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(InputError, match=str(bad)):
        load_model(bad)
    (bad / "config.json").unlink()
    with pytest.raises(InputError, match=r"bad: incomplete model folder, missing config.json"):
        load_model(bad)
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_gpt2_dir, truncated)
    with open(truncated / "model.safetensors", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(InputError, match=r"truncated: cannot load model folder"):
        load_model(truncated)


def test_save_model_roundtrip_with_extra_files(
    tiny_llama: nn.Module, gpt2_tok: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    save_model(tiny_llama, gpt2_tok, out, io.provenance(step="t"), {"extra.json": {"a": 1}})
    assert json.loads((out / "extra.json").read_text()) == {"a": 1}
    assert json.loads((out / "provenance.json").read_text())["step"] == "t"
    assert (out / "model.safetensors").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert _same_weights(tiny_llama, reloaded)


def test_decoder_blocks(tiny_gpt2: nn.Module, tiny_llama: nn.Module) -> None:
    assert decoder_blocks(tiny_gpt2) is tiny_gpt2.transformer.h
    assert decoder_blocks(tiny_llama) is tiny_llama.model.layers
    assert len(decoder_blocks(tiny_gpt2)) == len(decoder_blocks(tiny_llama)) == 4
    bert_like = types.SimpleNamespace(config=types.SimpleNamespace(model_type="bert"))
    with pytest.raises(ValueError, match="unsupported architecture 'bert'"):
        decoder_blocks(bert_like)


def test_prunable_weights_gpt2_are_conv1d(tiny_gpt2: nn.Module) -> None:
    weights = prunable_weights(tiny_gpt2)
    # 4 blocks x (c_attn, attn.c_proj, c_fc, mlp.c_proj): a pruner that only looked
    # for nn.Linear would find none of them.
    assert len(weights) == 16
    modules = dict(tiny_gpt2.named_modules())
    for name, weight in weights:
        layer = modules[name.removesuffix(".weight")]
        assert isinstance(layer, Conv1D) and not isinstance(layer, nn.Linear)
        assert layer.weight is weight
    assert not any(
        isinstance(m, nn.Linear) and m is not tiny_gpt2.lm_head
        for m in tiny_gpt2.transformer.modules()
    )
    assert weights[0][0] == "transformer.h.0.attn.c_attn.weight"
    # Conv1D stores [in, out]: c_attn 32 -> 96, c_proj 32 -> 32, c_fc 32 -> 128, c_proj 128 -> 32
    assert [tuple(w.shape) for _, w in weights[:4]] == [(32, 96), (32, 32), (32, 128), (128, 32)]
    assert sum(w.numel() for _, w in weights) == 4 * (32 * 96 + 32 * 32 + 32 * 128 + 128 * 32)


def test_prunable_weights_llama_are_linear(tiny_llama: nn.Module) -> None:
    weights = prunable_weights(tiny_llama)
    assert len(weights) == 4 * 7
    assert all(isinstance(w, nn.Parameter) and w.dim() == 2 for _, w in weights)
    names = [n for n, _ in weights]
    assert names[:7] == [f"model.layers.0.{m}.weight" for m in LLAMA_NAMES]
    assert not any("embed" in n or "norm" in n or "lm_head" in n for n in names)
    # q 32x32, k/v 16x32 (2 kv heads of 8), o 32x32, gate/up 64x32, down 32x64
    assert sum(w.numel() for _, w in weights) == 4 * (32 * 32 * 2 + 16 * 32 * 2 + 64 * 32 * 3)


def test_count_parameters_counts_tied_weights_once(
    tiny_gpt2: nn.Module, tiny_llama: nn.Module
) -> None:
    assert tiny_gpt2.lm_head.weight is tiny_gpt2.transformer.wte.weight
    every = sum(p.numel() for _, p in tiny_gpt2.named_parameters(remove_duplicate=False))
    assert count_parameters(tiny_gpt2) == every - 100 * 32
    # untied Llama: 2 embeddings of 100 x 32 + 4 blocks + final norm
    block = 32 * 32 * 2 + 16 * 32 * 2 + 64 * 32 * 3 + 2 * 32
    assert count_parameters(tiny_llama) == 2 * 100 * 32 + 4 * block + 32


@pytest.mark.slow
def test_import_smollm2_gguf(tmp_path: Path) -> None:
    out = tmp_path / "base"
    import_base_model({"source": "smollm2_gguf"}, out, seed=0)
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.num_hidden_layers == 30 == len(decoder_blocks(model))
    assert count_parameters(model) == 134_515_008
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert len(tokenizer) == 49152 and tokenizer.pad_token is not None
    ids = tokenizer(
        "The capital of France is Paris. The capital of Germany is Berlin.", return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        loss = model(ids, labels=ids).loss
    assert torch.exp(loss) < 60  # a working pretrained model, not random weights (~49k)
