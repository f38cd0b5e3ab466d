"""N:M semi-structured pruning: N zeros in every group of M consecutive inputs of each output."""

from __future__ import annotations

import pytest
import torch

from compfair.architecture import compressible_matrices, weight_out_in
from compfair.compression import Context, get_method
from compfair.compression.methods.nm import (
    check_divisible,
    check_nm,
    group_zeros,
    parse_level,
    prune_groups,
)
from compfair.compression.methods.wanda import wanda_scores
from compfair.compression.obs import NmMaskRule, row_group_mask, sparsegpt
from tests.support import make


def _calibration() -> torch.Tensor:
    return torch.randint(3, 128, (4, 16), generator=torch.Generator().manual_seed(0))


def test_parse_level_counts_zeros_first() -> None:
    assert parse_level("2:4") == (2, 4) and parse_level("4:8") == (4, 8)
    assert parse_level("1:4") == (1, 4)  # 1 zero, 3 kept
    for bad in ("4:2", "0:4", "2of4", "2:4:8"):
        with pytest.raises(ValueError):
            parse_level(bad)
    assert get_method("magnitude_nm").check_level("2:2") == "'2:2': need 0 < N < M"


def test_magnitude_2_of_4_by_hand() -> None:
    weight = torch.tensor([[1.0, -5.0, 2.0, 0.5, 3.0, 3.0, -1.0, 4.0]])
    prune_groups(weight, weight.abs(), 2, 4)
    # Group 1: |1|, |-5|, |2|, |0.5| -> zero 0.5 and 1; group 2: 3, 3, 1, 4 -> zero -1, first 3.
    assert weight.tolist() == [[0.0, -5.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0]]


def test_wanda_scores_change_the_group_choice() -> None:
    weight = torch.tensor([[1.0, -5.0, 2.0, 0.5]])
    norms = torch.tensor([10.0, 0.1, 1.0, 1.0])  # input 1 is nearly silent
    prune_groups(weight, wanda_scores(weight, norms), 2, 4)
    # Scores [10, 0.5, 2, 0.5]: the -5 goes (tie with 0.5 broken by position).
    assert weight.tolist() == [[1.0, 0.0, 2.0, 0.0]]


@pytest.mark.parametrize(("n", "m"), [(2, 4), (4, 8), (1, 4), (3, 4)])
def test_every_group_has_exactly_n_zeros(n: int, m: int) -> None:
    scores = torch.rand(7, 32, generator=torch.Generator().manual_seed(n * m))
    mask = row_group_mask(scores, n, m)
    assert torch.equal(mask.reshape(7, 32 // m, m).sum(-1), torch.full((7, 32 // m), n))
    # The masked entries are the n lowest of their group.
    grouped, chosen = scores.reshape(7, -1, m), mask.reshape(7, -1, m)
    highest_pruned = torch.where(chosen, grouped, -1).max(-1).values
    lowest_kept = torch.where(chosen, 2, grouped).min(-1).values
    assert torch.all(highest_pruned < lowest_kept)


@pytest.mark.parametrize("method", ["magnitude_nm", "wanda_nm", "sparsegpt_nm"])
@pytest.mark.parametrize("level", ["2:4", "4:8"])
def test_methods_give_n_zeros_in_every_group_of_every_matrix(method: str, level: str) -> None:
    model = make("llama", n_layer=2)
    impl = get_method(method)
    with torch.no_grad():
        report = impl.apply(model, level, {}, Context(seed=0, calibration=_calibration()))
    n, m = parse_level(level)
    for name, module in compressible_matrices(model):
        zeros = group_zeros(weight_out_in(module), m)
        assert torch.equal(zeros, torch.full_like(zeros, n)), name
        assert report["per_matrix"][name]["sparsity"] == 0.5
    assert report["measured"] == 0.5 and report["pattern"] == level
    checked = impl.verify(model, level, {}, report)
    assert checked["groups_with_extra_zeros"] == 0
    assert checked["n_groups"] == sum(
        weight_out_in(mod).numel() // m for _, mod in compressible_matrices(model)
    )


def test_the_three_methods_choose_different_masks() -> None:
    masks = {}
    for method in ("magnitude_nm", "wanda_nm", "sparsegpt_nm"):
        model = make("llama", n_layer=2)
        with torch.no_grad():
            get_method(method).apply(model, "2:4", {}, Context(seed=0, calibration=_calibration()))
        masks[method] = torch.cat(
            [(weight_out_in(m) == 0).flatten() for _, m in compressible_matrices(model)]
        )
    assert not torch.equal(masks["magnitude_nm"], masks["wanda_nm"])
    assert not torch.equal(masks["wanda_nm"], masks["sparsegpt_nm"])


def test_sparsegpt_nm_beats_magnitude_nm_on_the_layer_output() -> None:
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(16, 32, generator=g)
    x = torch.randn(256, 8, generator=g) @ torch.randn(8, 32, generator=g)
    x = x + 0.3 * torch.randn(256, 32, generator=g)
    hessian = 2 * x.t() @ x / 256
    obs = sparsegpt(weight, hessian, NmMaskRule(2, 4), blocksize=8)
    magnitude = weight.clone()
    prune_groups(magnitude, magnitude.abs(), 2, 4)
    assert (x @ (weight - obs).t()).norm() < 0.8 * (x @ (weight - magnitude).t()).norm()
    assert torch.equal(group_zeros(obs, 4), torch.full((16, 8), 2))


def test_matrix_not_divisible_by_m_is_named_before_pruning() -> None:
    model = make("llama", n_layer=1)  # in_features 32 and 64: no groups of 6
    before = [weight_out_in(m).clone() for _, m in compressible_matrices(model)]
    with pytest.raises(
        ValueError,
        match=r"groups of 6 inputs do not tile model.layers.0.self_attn.q_proj \(32 inputs\)",
    ):
        get_method("magnitude_nm").apply(model, "3:6", {}, Context(seed=0))
    after = [weight_out_in(m) for _, m in compressible_matrices(model)]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    check_divisible(model, 8)  # 32 and 64 are multiples of 8


def test_verify_refuses_a_group_with_too_many_non_zeros() -> None:
    model = make("gpt2", n_layer=1)
    get_method("magnitude_nm").apply(model, "2:4", {}, Context(seed=0))
    assert check_nm(model, 2, 4)["groups_with_extra_zeros"] == 0
    name, module = compressible_matrices(model)[2]
    with torch.no_grad():
        view = weight_out_in(module)
        view[5, 8:12] = 1.0  # a full group
    with pytest.raises(
        RuntimeError, match=rf"{name}: 1 of \d+ groups of 4 have more than 2 non-zeros"
    ):
        check_nm(model, 2, 4)
