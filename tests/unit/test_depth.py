"""Tests for depth pruning (``depth``): which layers go, and the shallower model it builds.

A layer whose attention and MLP output matrices (and their biases) are zero
passes its input through unchanged (``h + 0 + 0``): its Block Influence is 0
and removing it changes no logit. Such layers give known answers.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from test_structured import CALIBRATION, END_TO_END, calibration_file, calibration_ids
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from compfair.architecture import find_blocks, keep_blocks
from compfair.compression import Context, get_method
from compfair.compression.run import calibration_windows, compress_model
from compfair.compression.structured import check_depth, head_maps
from compfair.io import InputError
from compfair.models import load_model
from compfair.training import load_tokens
from tests.support import VOCAB, make, save_tiny_folder

IDS = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(1))


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def _pass_through(model: PreTrainedModel, layer: int, scale: float = 0.0) -> None:
    """Scale the attention output and MLP output matrices (and biases) of ``layer`` by ``scale``."""
    block = find_blocks(model)[1][layer]
    attn_out = head_maps(model)[layer].output[1]
    mlp_out = dict(block.named_modules())[
        "mlp.down_proj" if hasattr(block.mlp, "down_proj") else "mlp.c_proj"
    ]
    with torch.no_grad():
        for module in (attn_out, mlp_out):
            module.weight.mul_(scale)
            if module.bias is not None:
                module.bias.mul_(scale)


def _prune(model: nn.Module, level: float, **options: object) -> tuple[nn.Module, dict, Context]:
    impl = get_method("depth")
    context = Context(seed=0, calibration=calibration_ids())
    with torch.no_grad():
        report = impl.apply(model, level, {**impl.defaults(), **options}, context)
    return context.extra["model"], report, context


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_pass_through_layers_go_and_the_logits_stay(family: str) -> None:
    parent = make(family, n_layer=5)
    for layer in (1, 3):
        _pass_through(parent, layer)
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    pruned, report, _ = _prune(parent, 0.4)
    assert report["removed"] == [1, 3] and report["kept"] == [0, 2, 4]
    assert report["scores"][1] == pytest.approx(0.0, abs=1e-12)
    assert report["scores"][3] == pytest.approx(0.0, abs=1e-12)
    assert min(report["scores"][i] for i in (0, 2, 4)) > 1e-3
    assert len(find_blocks(pruned)[1]) == 3 == pruned.config.num_hidden_layers
    assert torch.equal(_logits(pruned), _logits(keep_blocks(parent, [0, 2, 4])))
    assert torch.equal(_logits(pruned), _logits(parent))  # the removed layers did nothing
    assert all(torch.equal(before[k], v) for k, v in parent.state_dict().items())
    assert check_depth(pruned, 0.4, report) == {"n_layers_after_reload": 3}


def test_block_influence_is_one_minus_the_cosine_of_consecutive_hidden_states() -> None:
    model = make("llama", n_layer=4)
    _, report, _ = _prune(model, 0.5, keep_first=False, keep_last=False)
    with torch.no_grad():
        states = model(calibration_ids(), output_hidden_states=True).hidden_states
    # hidden_states[i] enters block i; the last one has the final norm applied, so stop before it.
    for layer in range(3):
        cos = torch.nn.functional.cosine_similarity(
            states[layer].double(), states[layer + 1].double(), dim=-1
        )
        assert report["scores"][layer] == pytest.approx(1 - float(cos.mean()), abs=1e-6)
    lowest_two = sorted(sorted(range(4), key=lambda i: report["scores"][i])[:2])
    assert report["removed"] == lowest_two


def test_first_and_last_layers_are_kept_unless_asked() -> None:
    model = make("qwen2", n_layer=4)
    _pass_through(model, 0)
    _pass_through(model, 2, scale=1e-3)
    assert _prune(model, 0.25)[1]["removed"] == [2]
    assert _prune(model, 0.25, keep_first=False)[1]["removed"] == [0]
    _pass_through(model, 3)
    assert _prune(model, 0.5, keep_first=False, keep_last=False)[1]["removed"] == [0, 3]
    assert _prune(model, 0.25, keep_first=False)[1]["removed"] == [0]  # 3 is the last
    with pytest.raises(InputError, match="only 2 are not protected"):
        _prune(model, 0.75)
    with pytest.raises(InputError, match="removes none"):
        _prune(model, 0.1)


def _pass_through_neox(model: PreTrainedModel, layer: int) -> None:
    block = model.gpt_neox.layers[layer]
    with torch.no_grad():
        for module in (block.attention.dense, block.mlp.dense_4h_to_h):
            module.weight.zero_()
            module.bias.zero_()


def test_contiguous_selection_removes_the_closest_run() -> None:
    model = make("gpt_neox", n_layer=6)
    for layer in (2, 3):
        _pass_through_neox(model, layer)
    pruned, report, _ = _prune(model, 0.3333, selection="contiguous")
    assert report["removed"] == [2, 3] and report["importance"] == "angular_distance"
    assert report["scores"][2] == pytest.approx(0.0, abs=1e-6)  # the run 2..3 changes nothing
    assert len(report["scores"]) == 5  # runs of 2 start at 0..4
    assert torch.equal(_logits(pruned), _logits(model))


def test_check_depth_refuses_a_wrong_count_or_a_changed_layer() -> None:
    pruned, report, _ = _prune(make("opt", n_layer=4), 0.5)
    assert report["kept"] == [0, 3]
    with pytest.raises(RuntimeError, match="asks for 3"):
        check_depth(pruned, 0.25, report)
    with torch.no_grad():
        pruned.model.decoder.layers[1].fc1.weight[0, 0] += 1.0
    with pytest.raises(RuntimeError, match="block 1 differs from the parent's layer 3"):
        check_depth(pruned, 0.5, report)


@pytest.mark.parametrize("family", END_TO_END)
def test_the_new_model_saves_reloads_verifies_and_generates(family: str, tmp_path: Path) -> None:
    """What the driver does once it saves ``context.extra["model"]`` (see compress_model)."""
    parent_dir = save_tiny_folder(make(family, n_layer=4), tmp_path / "parent")
    parent, tokenizer = load_model(parent_dir)
    original = copy.deepcopy(parent.state_dict())
    pruned, report, _ = _prune(parent, 0.5, keep_last=False)
    assert all(torch.equal(original[k], v) for k, v in parent.state_dict().items())
    pruned.save_pretrained(tmp_path / "out")
    tokenizer.save_pretrained(tmp_path / "out")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    verified = get_method("depth").verify(reloaded, 0.5, {}, report)
    assert verified == {"n_layers_after_reload": 2} and len(report["kept"]) == 2
    assert torch.equal(_logits(reloaded), _logits(keep_blocks(parent, report["kept"])))
    generated = reloaded.generate(
        torch.tensor([[5, 6]]), max_new_tokens=3, min_new_tokens=3, do_sample=False
    )
    assert generated.shape == (1, 5)


@pytest.mark.parametrize("family", END_TO_END)
def test_compress_model_saves_the_shallower_model(family: str, tmp_path: Path) -> None:
    parent_dir = save_tiny_folder(make(family, n_layer=4), tmp_path / "parent")
    tokens = calibration_file(tmp_path / "train.safetensors")
    report = compress_model(
        parent_dir, tmp_path / "out", "depth", 0.5, {"keep_last": False}, seed=1,
        calibration_tokens=tokens, calibration=CALIBRATION,
    )  # fmt: skip
    assert report["n_layers_after_reload"] == 2
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    parent, _ = load_model(parent_dir)
    ids = calibration_windows(load_tokens(tokens, VOCAB), 4, 16, seed=1)
    impl = get_method("depth")
    context = Context(seed=1, calibration=ids)
    with torch.no_grad():
        expected = impl.apply(parent, 0.5, {**impl.defaults(), "keep_last": False}, context)
    assert report["kept"] == expected["kept"]
    assert torch.equal(_logits(reloaded), _logits(context.extra["model"]))
