"""Tests for compfair.architecture on tiny random models of 14 causal-LM families.

Every model is built offline from a config (hidden 32, 4 heads of 8, vocab 128).
The head and channel maps are checked against the real forward pass: a
forward pre-hook records what the block's output projection (or MLP output
matrix) reads, and editing the rows the map names must change exactly the
columns it names.
"""

from __future__ import annotations

import copy
import types
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.pytorch_utils import Conv1D

from compfair.architecture import (
    AttentionHeads,
    Slice,
    attention_heads,
    block_matrices,
    compressible_matrices,
    find_blocks,
    in_features,
    keep_blocks,
    mlp_channels,
    out_features,
    weight_out_in,
)
from tests.support import FAMILIES, LLAMA_NAMES, VOCAB, tiny_moe


def _model(family: str, n_layer: int = 3, seed: int = 0) -> PreTrainedModel:
    torch.manual_seed(seed)
    return FAMILIES[family].build(n_layer).eval()


def _ids(seed: int = 1) -> torch.Tensor:
    return torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(seed))


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(_ids()).logits


def _inputs_of(model: nn.Module, module: nn.Module) -> torch.Tensor:
    """What ``module`` reads during a forward pass of ``model`` on fixed ids."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone())
    )
    try:
        _logits(model)
    finally:
        handle.remove()
    assert len(seen) == 1
    return seen[0]


def _cols(*ranges: range) -> list[int]:
    return [i for r in ranges for i in r]


def _changed_columns(before: torch.Tensor, after: torch.Tensor) -> list[int]:
    diff = (before != after).reshape(-1, before.shape[-1]).any(dim=0)
    return diff.nonzero().flatten().tolist()


# --------------------------------------------------------------------------- blocks and matrices


@pytest.mark.parametrize("family", FAMILIES)
def test_find_blocks_path_and_count(family: str) -> None:
    model = _model(family, n_layer=3)
    prefix, blocks = find_blocks(model)
    assert prefix == FAMILIES[family].prefix
    assert blocks is model.get_submodule(prefix)
    assert isinstance(blocks, nn.ModuleList) and len(blocks) == 3


@pytest.mark.parametrize("family", FAMILIES)
def test_matrices_per_block_and_in_order(family: str) -> None:
    model = _model(family, n_layer=3)
    prefix, blocks = find_blocks(model)
    names = FAMILIES[family].names
    for block in blocks:
        assert [n for n, _ in block_matrices(block)] == names
    found = compressible_matrices(model)
    assert [n for n, _ in found] == [f"{prefix}.{i}.{n}" for i in range(3) for n in names]
    inside = {id(m) for m in blocks.modules()}
    modules = dict(model.named_modules())
    for name, module in found:
        assert isinstance(module, (nn.Linear, Conv1D)) and modules[name] is module
        assert id(module) in inside
    outside = [
        m
        for m in model.modules()
        if isinstance(m, (nn.Linear, Conv1D, nn.Embedding)) and id(m) not in inside
    ]
    assert outside, "the LM head at least lies outside the blocks"
    assert not {id(m) for m in outside} & {id(m) for _, m in found}


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_out_in_is_an_out_in_view(family: str) -> None:
    model = _model(family, n_layer=2)
    for _, module in compressible_matrices(model):
        view = weight_out_in(module)
        assert view.shape == (out_features(module), in_features(module))
        assert view.data_ptr() == module.weight.data_ptr()
    block = find_blocks(model)[1][0]
    first = dict(block_matrices(block))[FAMILIES[family].names[-1]]  # the MLP output matrix
    assert in_features(first) in (64, 128) and out_features(first) == 32


def test_weight_out_in_writes_reach_both_layer_types() -> None:
    linear, conv = nn.Linear(2, 3), Conv1D(nf=3, nx=2)  # both map 2 inputs to 3 outputs
    assert tuple(linear.weight.shape) == (3, 2) and tuple(conv.weight.shape) == (2, 3)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for layer in (linear, conv):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
        view = weight_out_in(layer)
        assert view.shape == (3, 2)
        view[1, 0] = 5.0  # output 1 reads input 0 with weight 5
        view[2, 1] = -2.0  # output 2 reads input 1 with weight -2
        with torch.no_grad():
            out = layer(x)
        torch.testing.assert_close(out, torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, -2.0]]))
    assert conv.weight[0, 1] == 5.0 and linear.weight[1, 0] == 5.0  # [in, out] vs [out, in]
    with pytest.raises(TypeError, match="Embedding"):
        weight_out_in(nn.Embedding(4, 2))


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(model_type="toy", num_hidden_layers=2)
        self.embed = nn.Embedding(10, 4)
        self.mixed = nn.ModuleList([nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4))])
        self.head = nn.Linear(4, 10)


def test_model_without_blocks_raises_naming_class_and_type() -> None:
    with pytest.raises(ValueError, match=r"unsupported architecture 'toy' \(_Toy\)"):
        find_blocks(_Toy())
    with pytest.raises(ValueError, match="'toy'"):
        compressible_matrices(_Toy())
    not_a_module = types.SimpleNamespace(config=types.SimpleNamespace(model_type="bert"))
    with pytest.raises(ValueError, match="unsupported architecture 'bert'"):
        find_blocks(not_a_module)


class _Expert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(4, 8), nn.Linear(8, 4)


class _MoeBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.Linear(4, 4)
        self.gate = nn.Linear(4, 8)  # a router: left out
        self.experts = nn.ModuleList([_Expert() for _ in range(8)])


def test_blocks_are_the_outer_list_not_the_experts_inside() -> None:
    model = nn.Module()
    model.config = types.SimpleNamespace(model_type="toy_moe")
    model.layers = nn.ModuleList([_MoeBlock() for _ in range(2)])
    prefix, blocks = find_blocks(model)
    assert prefix == "layers" and len(blocks) == 2
    names = [n for n, _ in block_matrices(blocks[0])]
    assert names == ["attn"] + [f"experts.{e}.{m}" for e in range(8) for m in ("up", "down")]
    with pytest.raises(ValueError, match="mixture-of-experts"):
        mlp_channels(blocks[0])


def test_transformers_moe_blocks_give_attention_and_shared_expert_only() -> None:
    model = tiny_moe()
    block = find_blocks(model)[1][0]
    assert find_blocks(model)[0] == "model.layers"
    # Experts are 3-D parameters and the router is no Linear; shared_expert_gate is excluded.
    assert [n for n, _ in block_matrices(block)] == LLAMA_NAMES[:4] + [
        "mlp.shared_expert.gate_proj",
        "mlp.shared_expert.up_proj",
        "mlp.shared_expert.down_proj",
    ]
    with pytest.raises(ValueError, match="mixture-of-experts"):
        mlp_channels(block)
    assert attention_heads(block, model.config).num_key_value_heads == 2


# --------------------------------------------------------------------------- keep_blocks


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_keep_blocks_subset_saves_and_reloads(family: str, tmp_path: Path) -> None:
    model = _model(family, n_layer=3)
    before = _state(model)
    student = keep_blocks(model, [2, 0])
    prefix = FAMILIES[family].prefix
    assert len(find_blocks(student)[1]) == 2 == student.config.num_hidden_layers
    assert len(find_blocks(model)[1]) == 3 == model.config.num_hidden_layers
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the input is untouched
    for new, old in ((0, 2), (1, 0)):
        s_block = student.get_submodule(f"{prefix}.{new}").state_dict()
        t_block = model.get_submodule(f"{prefix}.{old}").state_dict()
        assert s_block.keys() == t_block.keys()
        assert all(torch.equal(s_block[k], t_block[k]) for k in s_block)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert (student.get_output_embeddings().weight is student.get_input_embeddings().weight) == tied
    logits = _logits(student)
    student.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(model) and reloaded.config.num_hidden_layers == 2
    assert torch.equal(_logits(reloaded), logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_keep_blocks_all_blocks_gives_the_same_model(family: str) -> None:
    model = _model(family, n_layer=3)
    same = keep_blocks(model, range(3))
    assert torch.equal(_logits(same), _logits(model))
    assert not same.training


def test_keep_blocks_sets_the_aliased_layer_count_and_reindexes_layer_types(
    tmp_path: Path,
) -> None:
    gpt2 = keep_blocks(_model("gpt2", n_layer=3), [1])
    assert gpt2.config.n_layer == 1 and gpt2.config.to_dict()["n_layer"] == 1
    bloom = keep_blocks(_model("bloom", n_layer=3), [0, 1])
    assert bloom.config.n_layer == 2
    model = _model("gemma2", n_layer=3)
    assert model.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    student = keep_blocks(model, [1, 2])
    # Kept block 1 is still the full-attention one (a prefix cut would have made it sliding).
    assert student.config.layer_types == ["full_attention", "sliding_attention"]
    assert model.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    student.save_pretrained(tmp_path)
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.layer_types == [
        "full_attention",
        "sliding_attention",
    ]


def test_keep_blocks_leaves_the_rng_alone() -> None:
    model = _model("llama", n_layer=2)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    keep_blocks(model, [1])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([], "at least one"),
        ([0, 3], r"\[3\] not in 0..2"),
        ([-1], r"\[-1\]"),
        ([1, 1], "repeat"),
    ],
)
def test_keep_blocks_refuses_bad_indices(indices: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        keep_blocks(_model("gpt2", n_layer=3), indices)


# --------------------------------------------------------------------------- attention heads


def _heads(model: PreTrainedModel) -> AttentionHeads:
    return attention_heads(find_blocks(model)[1][0], model.config)


def test_head_rows_by_hand() -> None:
    # GPT-2 c_attn is [q | k | v], each 4 heads of 8.
    gpt2 = _heads(_model("gpt2", n_layer=1))
    assert gpt2.query_rows(1).index.tolist() == list(range(8, 16))
    assert gpt2.key_rows(1).index.tolist() == list(range(40, 48))
    assert gpt2.value_rows([0, 3]).index.tolist() == _cols(range(64, 72), range(88, 96))
    assert gpt2.output_columns(3).index.tolist() == list(range(24, 32))
    assert gpt2.query_rows(1).name == "attn.c_attn" and gpt2.output[0] == "attn.c_proj"
    # GPT-NeoX query_key_value is [q_h | k_h | v_h] per head (view(..., heads, 3 * head_dim)).
    neox = _heads(_model("gpt_neox", n_layer=1))
    assert neox.query_rows(1).index.tolist() == list(range(24, 32))
    assert neox.key_rows(1).index.tolist() == list(range(32, 40))
    assert neox.value_rows(1).index.tolist() == list(range(40, 48))
    # Falcon, new architecture, 2 groups of [q, q, k, v].
    falcon = _heads(_model("falcon_new", n_layer=1))
    assert falcon.group_size == 2
    assert falcon.query_rows(3).index.tolist() == list(range(40, 48))
    assert falcon.key_rows(1).index.tolist() == list(range(48, 56))
    assert falcon.value_rows(1).index.tolist() == list(range(56, 64))
    # Llama: separate matrices; 2 key/value heads of 8.
    llama = _heads(_model("llama", n_layer=1))
    assert llama.key_rows(1).name == "self_attn.k_proj"
    assert llama.key_rows(1).index.tolist() == list(range(8, 16))
    with pytest.raises(ValueError, match="key/value heads"):
        llama.value_rows(2)


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_heads_shape(family: str) -> None:
    info = _heads(_model(family, n_layer=1))
    layout, n_kv, head_dim = FAMILIES[family].heads
    assert (info.layout, info.num_heads, info.num_key_value_heads, info.head_dim) == (
        layout,
        4,
        n_kv,
        head_dim,
    )


def _perturb_rows(rows: Slice) -> None:
    # Random, not constant: a constant added to a row is nearly cancelled by the
    # zero-mean output of a LayerNorm in front of it.
    view = weight_out_in(rows.module)
    noise = torch.randn(len(rows.index), view.shape[1], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        view[rows.index] += noise


def _zero_rows(rows: Slice) -> None:
    with torch.no_grad():
        weight_out_in(rows.module)[rows.index] = 0.0
        if rows.module.bias is not None:
            rows.module.bias[rows.index] = 0.0


@pytest.mark.parametrize("head", [1, 3])  # two ends: a wrong layout can agree on one head
@pytest.mark.parametrize("part", ["query", "key", "value"])
@pytest.mark.parametrize("family", FAMILIES)
def test_head_rows_change_only_their_heads(family: str, part: str, head: int) -> None:
    model = _model(family, n_layer=1)
    base = _inputs_of(model, _heads(model).output[1])
    edited = copy.deepcopy(model)
    info = _heads(edited)
    group = head // info.group_size  # the key/value head that query head `head` reads
    heads = list(range(group * info.group_size, (group + 1) * info.group_size))
    if part == "query":
        rows, expected = info.query_rows(head), info.output_columns(head)
    else:
        rows = info.key_rows(group) if part == "key" else info.value_rows(group)
        expected = info.output_columns(heads)
    _perturb_rows(rows)
    changed = _changed_columns(base, _inputs_of(edited, info.output[1]))
    assert changed == sorted(expected.index.tolist())


@pytest.mark.parametrize("head", [1, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_zeroed_heads_contribute_exactly_nothing(family: str, head: int) -> None:
    model = _model(family, n_layer=1)
    info = _heads(model)
    group = head // info.group_size
    heads = list(range(group * info.group_size, (group + 1) * info.group_size))
    _zero_rows(info.value_rows(group))
    seen = _inputs_of(model, info.output[1])
    cols = info.output_columns(heads).index
    assert torch.count_nonzero(seen[..., cols]) == 0  # softmax-weighted sums of zero values
    others = torch.ones(seen.shape[-1], dtype=torch.bool)
    others[cols] = False
    assert torch.all(seen[..., others].abs().sum(dim=(0, 1)) > 0)
    # Zeroing the output projection's columns of head 0: what head 0 gives is ignored.
    cols0 = info.output_columns(0).index
    with torch.no_grad():
        weight_out_in(info.output[1])[:, cols0] = 0.0
        noisy = seen.clone()
        noisy[..., cols0] = torch.randn(*seen.shape[:-1], len(cols0))
        torch.testing.assert_close(info.output[1](noisy), info.output[1](seen), rtol=0, atol=1e-6)


def test_unknown_fused_layout_and_missing_attention_raise() -> None:
    block = find_blocks(_model("gpt2", n_layer=1))[1][0]
    mystery = types.SimpleNamespace(model_type="mystery", num_attention_heads=4)
    with pytest.raises(ValueError, match=r"GPT2Block \(model_type 'mystery'\).*fused"):
        attention_heads(block, mystery)
    with pytest.raises(ValueError, match="do not fit 5 heads"):
        attention_heads(block, types.SimpleNamespace(model_type="gpt2", num_attention_heads=5))
    with pytest.raises(ValueError, match="cannot identify the MLP"):
        mlp_channels(nn.Sequential(nn.Linear(4, 4)))


# --------------------------------------------------------------------------- MLP channels


@pytest.mark.parametrize("family", FAMILIES)
def test_mlp_channel_rows_and_columns(family: str) -> None:
    model = _model(family, n_layer=1)
    block = find_blocks(model)[1][0]
    mlp = mlp_channels(block)
    down_name, down = mlp.output
    assert down_name == FAMILIES[family].names[-1]
    assert mlp.num_channels == in_features(down) and len(mlp.channel_rows(0)) >= 1
    base = _inputs_of(model, down)
    channel = mlp.num_channels - 3
    edited = copy.deepcopy(model)
    e_mlp = mlp_channels(find_blocks(edited)[1][0])
    for rows in e_mlp.channel_rows(channel):
        _perturb_rows(rows)
    assert _changed_columns(base, _inputs_of(edited, e_mlp.output[1])) == [channel]
    for rows in e_mlp.channel_rows(channel):  # zero every row: act(0) = 0 and 0 * gate = 0
        _zero_rows(rows)
    seen = _inputs_of(edited, e_mlp.output[1])
    assert torch.count_nonzero(seen[..., channel]) == 0
    assert _changed_columns(base, seen) == [channel]
    with torch.no_grad():
        weight_out_in(e_mlp.output[1])[:, e_mlp.channel_columns(channel).index] = 0.0
        noisy = base.clone()
        noisy[..., channel] = 7.0
        torch.testing.assert_close(e_mlp.output[1](noisy), e_mlp.output[1](base), rtol=0, atol=0)


def test_fused_gate_up_rows_by_hand() -> None:
    mlp = mlp_channels(find_blocks(_model("phi3", n_layer=1))[1][0])
    (rows,) = mlp.channel_rows([1, 5])
    assert mlp.num_channels == 64 and rows.name == "mlp.gate_up_proj"
    assert rows.index.tolist() == [1, 5, 65, 69]  # gate half, then up half
    assert mlp.channel_columns(5).index.tolist() == [5]
