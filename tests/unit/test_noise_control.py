"""Weight noise, the strength search and the matched control on tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from compfair import io
from compfair.compression import Context, get_method
from compfair.compression.controls import make_matched_control, search_control
from compfair.compression.matching import match_strength
from compfair.models import load_model, prunable_weights
from compfair.perplexity import perplexity


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


@pytest.mark.parametrize("fixture", ["tiny_gpt2", "tiny_llama"])
def test_noise_is_level_times_each_matrix_rms_and_touches_nothing_else(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(fixture)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    matrices = {name for name, _ in prunable_weights(model)}
    with torch.no_grad():
        report = get_method("noise").apply(model, 0.2, {}, Context(seed=3))
    after = model.state_dict()
    for name, value in after.items():
        if name in matrices:
            ratio = _rms(value - before[name]) / _rms(before[name])  # by hand
            assert ratio == pytest.approx(0.2, rel=1e-4), name  # rescaled to the level exactly
            assert report["relative_noise"][name] == pytest.approx(ratio, rel=1e-6)
        else:
            assert torch.equal(value, before[name]), name  # embeddings, norms, biases, LM head
    untouched = " ".join(set(after) - matrices)
    assert "lm_head" in untouched and ("wte" in untouched or "embed_tokens" in untouched)
    assert "ln_" in untouched or "norm" in untouched
    assert report["mean_relative_noise"] == pytest.approx(0.2, rel=1e-4)
    assert get_method("noise").verify(model, 0.2, {}, report)["verified_matrices"] == len(matrices)


def test_noise_is_seeded_per_matrix_and_verify_catches_a_changed_matrix(tiny_llama) -> None:
    state = {k: v.clone() for k, v in tiny_llama.state_dict().items()}
    method = get_method("noise")
    with torch.no_grad():
        report = method.apply(tiny_llama, 0.1, {}, Context(seed=1))
    first = {k: v.clone() for k, v in tiny_llama.state_dict().items()}
    for seed, same in ((1, True), (2, False)):
        tiny_llama.load_state_dict(state)
        with torch.no_grad():
            method.apply(tiny_llama, 0.1, {}, Context(seed=seed))
        for name, weight in prunable_weights(tiny_llama):
            assert torch.equal(weight, first[name]) is same, name
    tiny_llama.load_state_dict(first)
    with torch.no_grad():
        prunable_weights(tiny_llama)[-1][1].mul_(1.01)
    with pytest.raises(RuntimeError, match="sum of squares"):
        method.verify(tiny_llama, 0.1, {}, report)
    with pytest.raises(RuntimeError, match="noise scale off the level 0.12"):
        method.verify(tiny_llama, 0.12, {}, report)  # the report's noise is 0.1, not 0.12


# --------------------------------------------------------------------------- the search


def test_match_strength_finds_the_target_and_records_every_try() -> None:
    calls: list[float] = []

    def ratio_at(s: float) -> float:
        calls.append(s)
        return math.exp(3 * s)

    found = match_strength(ratio_at, math.exp(0.6), 0.001, 1.0, tolerance=0.01)
    assert abs(found.ratio / math.exp(0.6) - 1) <= 0.01
    assert found.strength == pytest.approx(0.2, abs=0.01)
    assert [s for s, _ in found.tries] == calls and calls[0] == pytest.approx(math.sqrt(0.001))
    # the first step assumes power 2, the second measures this curve's power 1: exact
    assert len(calls) == 3


def test_match_strength_needs_few_tries_on_a_noise_like_curve() -> None:
    """Excess log-perplexity 0.47 at 0.1 and x2.27 per doubling (SmolLM2 under weight noise)."""
    for target in (1.1, 1.3, 2.0, 5.0):
        found = match_strength(lambda s: math.exp(0.47 * (s / 0.1) ** 2.27), target, 0.005, 0.5)
        assert abs(found.ratio / target - 1) <= 0.05 and len(found.tries) <= 3, found.tries


def test_match_strength_says_when_the_bounds_cannot_reach_the_target() -> None:
    with pytest.raises(
        ValueError, match=r"within strengths \[0.1, 0.5\].*lowest strength 0.1 gives 1.35"
    ):
        match_strength(lambda s: math.exp(3 * s), 1.05, 0.1, 0.5)
    with pytest.raises(ValueError, match=r"ratio of 20 .*highest strength 0.5 gives 4.48"):
        match_strength(lambda s: math.exp(3 * s), 20.0, 0.1, 0.5)


def test_match_strength_gives_up_after_max_tries_over_a_jump() -> None:
    calls = []

    def step(s: float) -> float:
        calls.append(s)
        return 1.0 if s < 0.3 else 3.0  # jumps over the target 2 +- 5 %

    with pytest.raises(ValueError, match=r"after 6 tries \(strength: ratio 0.1: 1, 0.4: 3"):
        match_strength(step, 2.0, 0.01, 1.0, max_tries=6)
    assert len(calls) == 6


def test_match_strength_survives_a_destroyed_model_and_refuses_bad_arguments() -> None:
    def ratio_at(s: float) -> float:
        return math.inf if s > 0.5 else math.exp(30 * s**3)  # perplexity overflows near the top

    found = match_strength(ratio_at, math.exp(2.0), 0.01, 1.0)
    assert abs(found.ratio / math.exp(2.0) - 1) <= 0.05
    assert found.tries[1][0] == pytest.approx(0.1 * math.sqrt(2.0 / 0.03))  # power 2 from 0.1
    assert found.tries[1][1] == math.inf  # overshot into the destroyed range, then bracketed
    for low, high, tolerance in ((0.5, 0.1, 0.05), (0.0, 1.0, 0.05), (0.1, 1.0, 0.0)):
        with pytest.raises(ValueError, match="need 0 < low < high"):
            match_strength(ratio_at, 2.0, low, high, tolerance)


# --------------------------------------------------------------------------- the control


def test_a_matched_control_reaches_the_models_perplexity_ratio(
    tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    """The parent degraded by noise until its held-out perplexity ratio is the model's (a
    magnitude-pruned copy); the saved control evaluates to that ratio."""
    model, _ = load_model(tiny_gpt2_dir)
    tokens = torch.randint(
        0, model.config.vocab_size, (600,), generator=torch.Generator().manual_seed(0)
    )
    evaluation = {"seq_len": 32, "max_tokens": None, "batch_size": 4}
    parent_ppl = perplexity(model, tokens, 32, None, 4)
    pruned, _ = load_model(tiny_gpt2_dir)
    with torch.no_grad():
        get_method("magnitude").apply(pruned, 0.6, {"tolerance": 0.005}, Context(seed=0))
    target = perplexity(pruned, tokens, 32, None, 4) / parent_ppl
    search = {"seed": 5, "tolerance": 0.05, "max_tries": 12, "bounds": [0.005, 0.9]}
    found, base = search_control(model, "noise", target, tokens, evaluation, search)
    assert base == pytest.approx(parent_ppl)
    assert abs(found.ratio / target - 1) <= 0.05
    # the parent is left as it was; the strength found gives the ratio found again
    assert perplexity(model, tokens, 32, None, 4) == pytest.approx(parent_ppl)
    with torch.no_grad():
        get_method("noise").apply(model, found.strength, {}, Context(seed=5))
    assert perplexity(model, tokens, 32, None, 4) / parent_ppl == pytest.approx(found.ratio)
    json.dumps([list(t) for t in found.tries])  # recorded, serialisable


def test_an_unreachable_control_names_the_model(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model, _ = load_model(tiny_gpt2_dir)
    tokens = torch.randint(
        0, model.config.vocab_size, (300,), generator=torch.Generator().manual_seed(1)
    )
    save_file({"input_ids": tokens}, str(tmp_path / "heldout.safetensors"))
    io.write_json(tmp_path / "model.json", {"perplexity": 1e9})
    io.write_json(tmp_path / "parent.json", {"perplexity": 10.0})
    with pytest.raises(ValueError, match="noise-match-m of m: cannot reach"):
        make_matched_control(
            tiny_gpt2_dir,
            tmp_path / "out",
            "noise",
            tmp_path / "model.json",
            tmp_path / "parent.json",
            tmp_path / "heldout.safetensors",
            {"seq_len": 32, "max_tokens": None, "batch_size": 4},
            {"seed": 0, "tolerance": 0.05, "max_tries": 4, "bounds": [0.01, 0.05]},
            variant="noise-match-m",
            matches="m",
        )
    assert not (tmp_path / "out").exists()


def test_the_saved_control_evaluates_to_the_ratio_it_was_matched_at(
    tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    """End to end on folders: the evaluation job's perplexity of the saved control over the
    parent's is the ratio the search recorded (the control is degraded once, not twice)."""
    from safetensors.torch import save_file

    from compfair.compression.run import compress_model
    from compfair.perplexity import evaluate_model

    model, _ = load_model(tiny_gpt2_dir)
    tokens = torch.randint(
        0, model.config.vocab_size, (600,), generator=torch.Generator().manual_seed(2)
    )
    save_file({"input_ids": tokens}, str(tmp_path / "heldout.safetensors"))
    settings = {"seq_len": 32, "max_tokens": None, "batch_size": 4}

    def evaluate(folder: Path, name: str) -> Path:
        out = tmp_path / f"{name}.json"
        evaluate_model(folder, tmp_path / "heldout.safetensors", out, name, 32, None, 4)
        return out

    compress_model(tiny_gpt2_dir, tmp_path / "m", "magnitude", 0.6, {"tolerance": 0.005}, 0)
    report = make_matched_control(
        tiny_gpt2_dir,
        tmp_path / "c",
        "noise",
        evaluate(tmp_path / "m", "m"),
        evaluate(tiny_gpt2_dir, "parent"),
        tmp_path / "heldout.safetensors",
        settings,
        {"seed": 3, "tolerance": 0.05, "max_tries": 12, "bounds": [0.005, 0.9]},
        variant="noise-match-m",
        matches="m",
    )
    saved = json.loads((tmp_path / "c" / "compression.json").read_text())
    assert saved["matches"] == "m" and saved["tries"] == [list(t) for t in report["tries"]]
    control_ppl = json.loads(evaluate(tmp_path / "c", "c").read_text())["perplexity"]
    parent_ppl = json.loads((tmp_path / "parent.json").read_text())["perplexity"]
    assert control_ppl / parent_ppl == pytest.approx(saved["ratio"], rel=1e-6)
    assert abs(saved["ratio"] / saved["target_ratio"] - 1) <= 0.05
