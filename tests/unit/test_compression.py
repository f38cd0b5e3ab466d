"""The compression plug-ins: magnitude (global and per matrix) and random pruning, the driver."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from compfair.compression import Context, get_method
from compfair.compression.run import calibration_windows, compress_model
from compfair.compression.sparsity import prune_by_scores
from compfair.io import InputError
from compfair.models import load_model, measure_sparsity, prunable_weights

Factory = Callable[..., nn.Module]
TOLERANCE = {"tolerance": 0.005}


def _not_prunable(model: nn.Module) -> dict[str, torch.Tensor]:
    prunable = {name for name, _ in prunable_weights(model)}
    return {k: v.clone() for k, v in model.state_dict().items() if k not in prunable}


def _model(arch: str, gpt2_factory: Factory, llama_factory: Factory) -> nn.Module:
    return gpt2_factory() if arch == "gpt2" else llama_factory()


def _apply(name: str, model: nn.Module, level: float, seed: int = 0) -> dict:
    with torch.no_grad():
        return get_method(name).apply(model, level, TOLERANCE, Context(seed=seed))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("sparsity", [0.3, 0.7])
def test_global_magnitude(
    arch: str, sparsity: float, gpt2_factory: Factory, llama_factory: Factory
) -> None:
    model = _model(arch, gpt2_factory, llama_factory)
    untouched = _not_prunable(model)
    weights = prunable_weights(model)
    before = torch.cat([w.detach().flatten().clone() for _, w in weights])
    assert (before == 0).sum() == 0

    report = _apply("magnitude", model, sparsity)

    after = torch.cat([w.detach().flatten() for _, w in weights])
    assert report["n_pruned"] == round(sparsity * before.numel()) == int((after == 0).sum())
    assert report["measured"] == pytest.approx(measure_sparsity(model))
    pruned = after == 0
    # the zeros are the smallest magnitudes and the kept weights are unchanged
    assert before[~pruned].abs().min() >= before[pruned].abs().max()
    assert torch.equal(after[~pruned], before[~pruned])
    # global, not per matrix: the matrices end at different sparsities
    assert len({round(v, 3) for v in report["per_matrix"].values()}) > 1
    state = model.state_dict()
    for key, value in untouched.items():  # embeddings, norms, biases, head
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_layerwise_magnitude_gives_every_matrix_the_sparsity(
    arch: str, gpt2_factory: Factory, llama_factory: Factory
) -> None:
    model = _model(arch, gpt2_factory, llama_factory)
    before = {name: w.detach().clone() for name, w in prunable_weights(model)}
    _apply("layerwise_magnitude", model, 0.37)
    for name, w in prunable_weights(model):
        zeros = w == 0
        assert abs(int(zeros.sum()) - 0.37 * w.numel()) <= 1, name  # within one weight
        # inside each matrix the smallest magnitudes went
        assert before[name][~zeros].abs().min() >= before[name][zeros].abs().max(), name


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_random_pruning_hits_its_sparsity_and_differs_from_magnitude(
    arch: str, gpt2_factory: Factory, llama_factory: Factory
) -> None:
    rand, again, other, mag = (_model(arch, gpt2_factory, llama_factory) for _ in range(4))
    report = _apply("random", rand, 0.5, seed=3)
    _apply("random", again, 0.5, seed=3)
    _apply("random", other, 0.5, seed=4)
    _apply("magnitude", mag, 0.5)
    assert report["n_pruned"] == round(0.5 * report["n_total"])
    assert measure_sparsity(rand) == pytest.approx(report["n_pruned"] / report["n_total"])

    def mask(m: nn.Module) -> torch.Tensor:
        return torch.cat([(w == 0).flatten() for _, w in prunable_weights(m)])

    assert torch.equal(mask(rand), mask(again))  # seeded
    assert not torch.equal(mask(rand), mask(other))
    # random positions: about half of magnitude's pruned weights are also pruned, not all
    overlap = (mask(rand) & mask(mag)).sum() / mask(mag).sum()
    assert 0.4 < float(overlap) < 0.6


def test_ties_are_broken_to_the_exact_count(gpt2_factory: Factory) -> None:
    model = gpt2_factory()
    with torch.no_grad():
        for _, weight in prunable_weights(model):
            weight.fill_(0.5)  # every entry ties
        report = prune_by_scores(model, 0.3, lambda n, w: w.abs(), "global")
    n_zero = sum(int((w == 0).sum()) for _, w in prunable_weights(model))
    assert n_zero == report["n_pruned"] == round(0.3 * report["n_total"])
    assert (prunable_weights(model)[0][1] == 0).all()  # ties go in order: the first matrix first


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
@pytest.mark.parametrize("method", ["magnitude", "layerwise_magnitude", "random"])
def test_compress_model_saves_a_verified_plain_model(
    fixture: str, method: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    in_dir = request.getfixturevalue(fixture)
    out = tmp_path / f"{method}-0.50"
    report = compress_model(in_dir, out, method, 0.5, TOLERANCE, seed=0, variant=out.name)
    assert abs(report["measured_after_reload"] - 0.5) <= 0.005
    saved = json.loads((out / "compression.json").read_text())
    assert saved["method"] == method and saved["level"] == 0.5
    assert saved["n_pruned"] == report["n_pruned"]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["variant"] == out.name and prov["parent"] == str(in_dir)
    reloaded = AutoModelForCausalLM.from_pretrained(out)  # plain transformers sees the zeros
    assert measure_sparsity(reloaded) == pytest.approx(report["measured"])
    original, _ = load_model(in_dir)
    for key, value in _not_prunable(original).items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    assert reloaded.generate(torch.tensor([[5, 6]]), max_new_tokens=3, do_sample=False).shape == (
        1,
        5,
    )


def test_compress_model_fails_when_the_sparsity_is_off(
    tiny_gpt2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compfair.compression.methods.magnitude import GlobalMagnitude

    real = GlobalMagnitude.apply
    monkeypatch.setattr(
        GlobalMagnitude, "apply", lambda self, m, lvl, o, c: real(self, m, lvl / 2, o, c)
    )
    with pytest.raises(RuntimeError, match="measured sparsity"):
        compress_model(tiny_gpt2_dir, tmp_path / "p", "magnitude", 0.4, TOLERANCE, seed=0)
    assert not (tmp_path / "p").exists()


def test_calibration_windows_are_seeded_and_disjoint() -> None:
    tokens = torch.arange(100)
    a = calibration_windows(tokens, 4, 10, seed=1)
    assert a.shape == (4, 10)
    assert torch.equal(a, calibration_windows(tokens, 4, 10, seed=1))
    assert not torch.equal(a, calibration_windows(tokens, 4, 10, seed=2))
    starts = a[:, 0].tolist()
    assert all(s % 10 == 0 for s in starts) and len(set(starts)) == 4  # whole, distinct windows
    assert all(torch.equal(row, torch.arange(row[0], row[0] + 10)) for row in a)
    with pytest.raises(InputError, match="need 110 training tokens, the split has 100"):
        calibration_windows(tokens, 11, 10, seed=0)
