"""Tests for structured pruning of attention heads and MLP channels (``heads``, ``channels``).

The removed parts are checked against the real forward pass: a forward
pre-hook records what a block's output projection (or MLP output matrix)
reads, and the pruned model must read exactly the parent's values for the
kept heads or channels, nothing from the removed ones, and give what the
parent gives with the removed ones masked by hand.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from compfair.architecture import weight_out_in
from compfair.compression import Context, get_method
from compfair.compression.run import calibration_windows, compress_model
from compfair.compression.structured import (
    channel_maps,
    channel_weight_scores,
    check_channels,
    check_heads,
    head_maps,
    head_weight_scores,
)
from compfair.io import InputError
from compfair.training import load_tokens
from tests.support import FAMILIES, VOCAB, make, save_tiny_folder, tiny_moe

#: The families every method runs on end to end (Conv1D, GQA Linear, fused per-head q/k/v, OPT).
END_TO_END = ["gpt2", "llama", "gpt_neox", "opt", "qwen2"]
CALIBRATION = {"n_sequences": 4, "seq_len": 16}


# --------------------------------------------------------------------------- shared helpers


def calibration_file(path: Path, n_tokens: int = 256, seed: int = 0) -> Path:
    """A token file of ``n_tokens`` random ids in ``[3, VOCAB)``, as the training split is stored."""
    ids = torch.randint(3, VOCAB, (n_tokens,), generator=torch.Generator().manual_seed(seed))
    safetensors.torch.save_file({"input_ids": ids}, str(path))
    return path


def calibration_ids(seed: int = 0) -> torch.Tensor:
    """``[4, 16]`` calibration ids."""
    return torch.randint(3, VOCAB, (4, 16), generator=torch.Generator().manual_seed(seed))


def apply(method: str, model: nn.Module, level: float, calibration: object = None) -> dict:
    impl = get_method(method)
    with torch.no_grad():
        return impl.apply(model, level, impl.defaults(), Context(seed=0, calibration=calibration))


def reads(model: nn.Module, module: nn.Module) -> torch.Tensor:
    """What ``module`` reads during a forward pass of ``model`` on fixed ids."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    ids = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        handle.remove()
    assert len(seen) == 1
    return seen[0]


# --------------------------------------------------------------------------- heads


@pytest.mark.parametrize(
    ("family", "method"),
    [(f, "heads") for f in FAMILIES] + [(f, "heads_act") for f in END_TO_END],
)
def test_removed_heads_add_nothing_and_kept_heads_are_unchanged(family: str, method: str) -> None:
    parent = make(family, n_layer=2)
    pruned = copy.deepcopy(parent)
    report = apply(method, pruned, 0.5, calibration_ids())
    assert report["removed_per_layer"] == [2, 2] and report["measured"] == 0.5
    info_p, info = head_maps(parent)[0], head_maps(pruned)[0]
    seen_p, seen = reads(parent, info_p.output[1]), reads(pruned, info.output[1])
    removed = [h for layer, h in report["removed"] if layer == 0]
    for h in range(info.num_heads):
        cols = info.output_columns(h).index
        if h not in removed:
            assert torch.equal(seen[..., cols], seen_p[..., cols]), h
        elif info.group_size == 1:  # its values are gone too: the head's output is zero
            assert torch.count_nonzero(seen[..., cols]) == 0, h
    # What the output projection makes is the parent's, with the removed heads masked by hand.
    masked = seen_p.clone()
    masked[..., info.output_columns(removed).index] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(
            info.output[1](seen), info_p.output[1](masked), rtol=0, atol=1e-6
        )


def test_head_weight_scores_by_hand_on_gpt2_conv1d() -> None:
    model = make("gpt2", n_layer=1).requires_grad_(False)
    attn = model.transformer.h[0].attn
    scores = head_weight_scores(head_maps(model)[0])
    for h in range(4):
        out_cols = attn.c_proj.weight[8 * h : 8 * h + 8, :]  # Conv1D is [in, out]
        value_rows = attn.c_attn.weight[:, 64 + 8 * h : 72 + 8 * h]  # [q | k | v], 32 each
        expected = out_cols.double().norm() * value_rows.double().norm()
        assert float(scores[h]) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("method", ["heads", "heads_act"])
@pytest.mark.parametrize(
    ("weak", "kv_removed"),
    [({0: [2, 3], 1: [0, 1]}, [[0, 1], [1, 0]]), ({0: [1, 3], 1: [0, 2]}, [])],
)
def test_weakest_heads_go_and_whole_kv_groups_with_them(
    method: str, weak: dict[int, list[int]], kv_removed: list[list[int]]
) -> None:
    model = make("llama", n_layer=2)  # 4 query heads, 2 key/value heads
    parent = copy.deepcopy(model)
    with torch.no_grad():
        for layer, heads in weak.items():
            info = head_maps(model)[layer]
            weight_out_in(info.output[1])[:, info.output_columns(heads).index] *= 1e-3
    report = apply(method, model, 0.5, calibration_ids())
    assert report["removed"] == [[layer, h] for layer, heads in weak.items() for h in heads]
    assert report["removed_kv_heads"] == kv_removed
    for layer in range(2):
        attn, attn_p = model.model.layers[layer].self_attn, parent.model.layers[layer].self_attn
        groups = [g for lay, g in kv_removed if lay == layer]
        for g in range(2):
            rows = slice(8 * g, 8 * g + 8)
            for name in ("k_proj", "v_proj"):
                w, w_p = getattr(attn, name).weight[rows], getattr(attn_p, name).weight[rows]
                assert (not w.any()) if g in groups else torch.equal(w, w_p)


def test_heads_refuse_unknown_attention_and_levels_removing_none_or_all() -> None:
    model = make("gpt2", n_layer=1)
    model.config.model_type = "mystery"
    with pytest.raises(ValueError, match=r"GPT2Block \(model_type 'mystery'\)"):
        apply("heads", model, 0.5)
    with pytest.raises(InputError, match=r"round\(0.1 x 4 attention heads\) = 0 removes none"):
        apply("heads", make("llama", n_layer=1), 0.1)
    with pytest.raises(InputError, match="removes all"):
        apply("heads", make("llama", n_layer=1), 0.9)
    with pytest.raises(InputError, match="calibration"):
        apply("heads_act", make("llama", n_layer=1), 0.5, None)


def test_check_heads_finds_what_the_zeros_say() -> None:
    model = make("qwen2", n_layer=2)
    report = apply("heads", model, 0.5)
    assert check_heads(model, 0.5, report) == {
        "measured_after_reload": 0.5,
        "removed_after_reload": 4,
    }
    layer, head = report["removed"][0]
    info = head_maps(model)[layer]
    with torch.no_grad():
        weight_out_in(info.output[1])[0, info.output_columns(head).index[0]] = 1.0
    with pytest.raises(RuntimeError, match=f"layer {layer}: 1 of 4 heads are zero"):
        check_heads(model, 0.5, report)
    with pytest.raises(RuntimeError, match="asks for 1"):
        check_heads(model, 0.25, report)


# --------------------------------------------------------------------------- MLP channels


@pytest.mark.parametrize(
    ("family", "method"),
    [(f, "channels") for f in FAMILIES] + [(f, "channels_act") for f in END_TO_END],
)
def test_removed_channels_contribute_exactly_nothing(family: str, method: str) -> None:
    parent = make(family, n_layer=2)
    pruned = copy.deepcopy(parent)
    report = apply(method, pruned, 0.25, calibration_ids())
    mlp_p, mlp = channel_maps(parent)[0], channel_maps(pruned)[0]
    removed = report["removed"][0]
    assert len(removed) == round(0.25 * mlp.num_channels) and report["measured"] == 0.25
    kept = [c for c in range(mlp.num_channels) if c not in removed]
    seen_p, seen = reads(parent, mlp_p.output[1]), reads(pruned, mlp.output[1])
    assert torch.count_nonzero(seen[..., removed]) == 0  # act(0) = 0, and 0 * gate = 0
    assert torch.equal(seen[..., kept], seen_p[..., kept])
    masked = seen_p.clone()
    masked[..., removed] = 0.0  # the parent's MLP output with those channels masked by hand
    with torch.no_grad():
        torch.testing.assert_close(mlp.output[1](seen), mlp_p.output[1](masked), rtol=0, atol=1e-6)


def test_channel_weight_scores_by_hand() -> None:
    llama = make("llama", n_layer=1).requires_grad_(False)
    mlp = llama.model.layers[0].mlp
    scores = channel_weight_scores(channel_maps(llama)[0])
    for c in (0, 17, 63):
        rows = torch.cat([mlp.gate_proj.weight[c], mlp.up_proj.weight[c]]).double()
        assert float(scores[c]) == pytest.approx(
            float(rows.norm() * mlp.down_proj.weight[:, c].double().norm()), rel=1e-12
        )
    gpt2 = make("gpt2", n_layer=1).requires_grad_(False)
    mlp = gpt2.transformer.h[0].mlp  # Conv1D: c_fc [32, 128], c_proj [128, 32]
    scores = channel_weight_scores(channel_maps(gpt2)[0])
    expected = mlp.c_fc.weight[:, 5].double().norm() * mlp.c_proj.weight[5].double().norm()
    assert float(scores[5]) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("method", ["channels", "channels_act"])
def test_weakest_channels_go(method: str) -> None:
    model = make("phi3", n_layer=1)  # fused gate_up_proj: rows c and 64 + c
    weak = sorted(torch.randperm(64, generator=torch.Generator().manual_seed(2))[:16].tolist())
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[:, weak] *= 1e-4
    report = apply(method, model, 0.25, calibration_ids())
    assert report["removed"] == [weak]
    gate_up = model.model.layers[0].mlp.gate_up_proj.weight
    assert not gate_up[weak].any() and not gate_up[[64 + c for c in weak]].any()
    kept = [c for c in range(64) if c not in weak]
    assert gate_up[kept].ne(0).any(dim=1).all() and gate_up[[64 + c for c in kept]].any()


def test_channels_refuse_mixture_of_experts_and_report_mismatch() -> None:
    moe = tiny_moe()
    with pytest.raises(ValueError, match="mixture-of-experts"):
        apply("channels", moe, 0.25)
    model = make("opt", n_layer=2)
    report = apply("channels", model, 0.25)
    assert check_channels(model, 0.25, report) == {"measured_after_reload": 0.25}
    other = {**report, "removed": [report["removed"][1], report["removed"][0]]}
    with pytest.raises(RuntimeError, match="differ"):
        check_channels(model, 0.25, other)
    with torch.no_grad():
        model.model.decoder.layers[1].fc2.weight[:, report["removed"][1][0]] = 0.5
    with pytest.raises(RuntimeError, match="layer 1: 15 of 64 MLP channels are zero"):
        check_channels(model, 0.25, report)


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    ("method", "level"),
    [("heads", 0.5), ("heads_act", 0.25), ("channels", 0.25), ("channels_act", 0.5)],
)
@pytest.mark.parametrize("family", END_TO_END)
def test_compress_model_saves_a_verified_plain_folder(
    family: str, method: str, level: float, tmp_path: Path
) -> None:
    parent_dir = save_tiny_folder(make(family, n_layer=2), tmp_path / "parent")
    tokens = calibration_file(tmp_path / "train.safetensors")
    out = tmp_path / f"{method}-{level}"
    needs = get_method(method).needs_calibration
    report = compress_model(
        parent_dir, out, method, level, {}, seed=3,
        calibration_tokens=tokens if needs else None, calibration=CALIBRATION if needs else None,
    )  # fmt: skip
    assert report["measured_after_reload"] == level
    assert json.loads((out / "compression.json").read_text())["removed"] == report["removed"]
    # The folder holds exactly what the method makes of the parent in memory.
    expected = AutoModelForCausalLM.from_pretrained(parent_dir).eval()
    ids = calibration_windows(load_tokens(tokens, VOCAB), 4, 16, seed=3) if needs else None
    apply(method, expected, level, ids)
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    state = reloaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in expected.state_dict().items())
    generated = reloaded.generate(
        torch.tensor([[5, 6]]), max_new_tokens=3, min_new_tokens=3, do_sample=False
    )
    assert generated.shape == (1, 5)


def test_methods_are_registered_with_their_kinds() -> None:
    expected = {
        "heads": ("pruning", "fraction", False),
        "heads_act": ("pruning", "fraction", True),
        "channels": ("pruning", "fraction", False),
        "channels_act": ("pruning", "fraction", True),
        "depth": ("pruning", "fraction", True),
        "rtn": ("quantization", "integer", False),
    }
    for name, kinds in expected.items():
        impl = get_method(name)
        assert (impl.family, impl.level_kind, impl.needs_calibration) == kinds, name
