"""Tests for compfair.prune: global magnitude pruning of Conv1D and nn.Linear matrices."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from compfair.io import InputError
from compfair.models import load_model, prunable_weights
from compfair.prune import global_magnitude_prune, measure_sparsity, prune_model

Factory = Callable[..., nn.Module]


def _not_prunable(model: nn.Module) -> dict[str, torch.Tensor]:
    prunable = {name for name, _ in prunable_weights(model)}
    return {k: v.clone() for k, v in model.state_dict().items() if k not in prunable}


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("sparsity", [0.3, 0.7])
def test_global_magnitude_prune(
    arch: str, sparsity: float, gpt2_factory: Factory, llama_factory: Factory
) -> None:
    model = gpt2_factory() if arch == "gpt2" else llama_factory()
    untouched = _not_prunable(model)
    weights = prunable_weights(model)
    before = torch.cat([w.detach().flatten().clone() for _, w in weights])
    assert (before == 0).sum() == 0

    report = global_magnitude_prune(model, sparsity)

    after = torch.cat([w.detach().flatten() for _, w in weights])
    n_total = before.numel()
    assert report["n_total"] == n_total
    assert report["n_pruned"] == round(sparsity * n_total) == int((after == 0).sum())
    assert abs(measure_sparsity(model) - sparsity) <= 0.005
    assert report["measured"] == pytest.approx(measure_sparsity(model))
    assert report["requested"] == sparsity
    pruned = after == 0
    # the zeros are the smallest magnitudes and the kept weights are unchanged
    assert before[~pruned].abs().min() >= before[pruned].abs().max()
    assert torch.equal(after[~pruned], before[~pruned])
    # global, not per-matrix: sparsities differ between matrices, and average to the total
    per = report["per_matrix"]
    assert set(per) == {name for name, _ in weights}
    sizes = {name: w.numel() for name, w in weights}
    assert sum(per[n] * sizes[n] for n in per) / n_total == pytest.approx(report["measured"])
    # embeddings, norms, biases and the head are untouched
    state = model.state_dict()
    for key, value in untouched.items():
        assert torch.equal(state[key], value), key
    # a plain model: no masks, hooks or extra parameters left behind
    assert not any(k.endswith(("_orig", "_mask")) for k in state)


def test_ties_are_broken_to_the_exact_count(gpt2_factory: Factory) -> None:
    model = gpt2_factory()
    with torch.no_grad():
        for _, weight in prunable_weights(model):
            weight.fill_(0.5)  # every entry ties
    report = global_magnitude_prune(model, 0.3)
    n_zero = sum(int((w == 0).sum()) for _, w in prunable_weights(model))
    assert n_zero == report["n_pruned"] == round(0.3 * report["n_total"])
    # ties are pruned in order: the first matrix goes first
    first = prunable_weights(model)[0][1]
    assert (first == 0).all()


def test_sparsity_extremes_and_bad_value(gpt2_factory: Factory) -> None:
    model = gpt2_factory()
    assert global_magnitude_prune(model, 0.0)["n_pruned"] == 0
    assert measure_sparsity(model) == 0.0
    assert global_magnitude_prune(model, 1.0)["measured"] == 1.0
    with pytest.raises(InputError, match="sparsity must be in"):
        global_magnitude_prune(model, 1.5)


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
def test_prune_model_saves_a_plain_sparse_model(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    in_dir = request.getfixturevalue(fixture)
    out = tmp_path / "pruned-0.50"
    report = prune_model(in_dir, out, 0.5)
    assert abs(report["measured_after_reload"] - 0.5) <= 0.005
    saved = json.loads((out / "pruning.json").read_text())
    assert saved["requested"] == 0.5 and saved["n_pruned"] == report["n_pruned"]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["sparsity"] == 0.5 and prov["parent"] == str(in_dir)
    # plain from_pretrained sees the zeros: the masks were folded into the weights
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert measure_sparsity(reloaded) == pytest.approx(report["measured"])
    original, _ = load_model(in_dir)
    assert measure_sparsity(original) == 0.0
    for key, value in _not_prunable(original).items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_prune_model_fails_when_sparsity_is_off(
    tiny_gpt2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compfair.prune as prune_module

    real = prune_module.global_magnitude_prune

    def undershoot(model: nn.Module, sparsity: float) -> dict:
        return real(model, sparsity / 2)  # a broken pruner

    monkeypatch.setattr(prune_module, "global_magnitude_prune", undershoot)
    with pytest.raises(RuntimeError, match="measured sparsity"):
        prune_model(tiny_gpt2_dir, tmp_path / "p", 0.4)
    assert not (tmp_path / "p").exists()
