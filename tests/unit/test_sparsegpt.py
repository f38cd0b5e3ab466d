"""SparseGPT and the shared OBS sweep, on random layers with correlated inputs (fixed seeds)."""

from __future__ import annotations

import pytest
import torch

from compfair.compression.obs import (
    BlockMaskRule,
    NmMaskRule,
    inverse_hessian_factor,
    lowest_mask,
    output_error,
    sparsegpt,
)


def _layer(rows: int = 24, cols: int = 64, tokens: int = 512, seed: int = 0):
    """A weight and the Hessian ``2 X^T X / n`` of inputs with correlated features."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, cols, generator=g)
    mixing = torch.randn(cols, cols, generator=g) / cols**0.5 + torch.eye(cols)
    x = torch.randn(tokens, 16, generator=g) @ torch.randn(16, cols, generator=g)
    x = x + 0.3 * torch.randn(tokens, cols, generator=g) @ mixing
    return weight, 2 * x.t() @ x / tokens, x


def _magnitude(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    return weight.masked_fill(lowest_mask(weight.abs(), round(sparsity * weight.numel())), 0.0)


def test_inverse_hessian_factor_inverts_the_damped_hessian() -> None:
    _, hessian, _ = _layer()
    upper, dead = inverse_hessian_factor(hessian, 0.01)
    damped = hessian + 0.01 * torch.diagonal(hessian).mean() * torch.eye(64)
    torch.testing.assert_close(upper.t() @ upper @ damped, torch.eye(64), atol=1e-3, rtol=0)
    assert torch.equal(upper, upper.triu()) and not dead.any()


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_sparsegpt_beats_magnitude_on_the_layer_output(sparsity: float) -> None:
    weight, hessian, x = _layer()
    rule = BlockMaskRule(sparsity)
    pruned = sparsegpt(weight, hessian, rule, blocksize=16)
    magnitude = _magnitude(weight, sparsity)
    err_sparsegpt = (x @ (weight - pruned).t()).norm()
    err_magnitude = (x @ (weight - magnitude).t()).norm()
    assert err_sparsegpt < 0.8 * err_magnitude
    # Exactly round(s * rows * block_cols) per block of 16 columns, no more.
    per_block = round(sparsity * 24 * 16)
    assert rule.n_pruned == 4 * per_block
    assert int((pruned == 0).sum()) == 4 * per_block
    assert [int((pruned[:, c : c + 16] == 0).sum()) for c in range(0, 64, 16)] == [per_block] * 4
    # The helper's error is the same quantity, from the Hessian.
    rel = output_error(weight, pruned, hessian)["output_rel"]
    assert rel == pytest.approx(float(err_sparsegpt / (x @ weight.t()).norm()), rel=1e-3)
    assert torch.equal(weight, _layer()[0])  # the input is not modified


def test_kept_weights_are_updated_and_pruned_ones_exactly_zero() -> None:
    weight, hessian, _ = _layer()
    pruned = sparsegpt(weight, hessian, BlockMaskRule(0.5), blocksize=128)
    kept = pruned != 0
    assert not torch.allclose(pruned[kept], weight[kept])  # OBS moved them
    assert int((~kept).sum()) == round(0.5 * weight.numel())


def test_dead_inputs_are_zeroed_and_counted_in_the_mask() -> None:
    weight, hessian, _ = _layer()
    hessian[5, :] = 0.0
    hessian[:, 5] = 0.0  # input 5 never fired
    pruned = sparsegpt(weight, hessian, BlockMaskRule(0.5), blocksize=64)
    assert torch.count_nonzero(pruned[:, 5]) == 0
    assert int((pruned == 0).sum()) == round(0.5 * weight.numel())


@pytest.mark.parametrize("blocksize", [3, 4, 10, 64])
def test_nm_sweep_does_not_depend_on_the_block_size(blocksize: int) -> None:
    # Groups of 4 straddle blocks of 3 or 10 columns: the rule then reads the
    # later columns with the pending lazy update added (Sweep.current).
    weight, hessian, _ = _layer()
    reference = sparsegpt(weight, hessian, NmMaskRule(2, 4), blocksize=1)
    result = sparsegpt(weight, hessian, NmMaskRule(2, 4), blocksize=blocksize)
    torch.testing.assert_close(result, reference, atol=1e-4, rtol=1e-4)
    assert torch.equal(result == 0, reference == 0)
    zeros = (result == 0).reshape(24, 16, 4).sum(dim=-1)
    assert torch.equal(zeros, torch.full((24, 16), 2))


def test_singular_hessian_without_damping_names_percdamp() -> None:
    weight = torch.randn(4, 8)
    hessian = -torch.eye(8)
    with pytest.raises(RuntimeError, match="percdamp"):
        sparsegpt(weight, hessian, BlockMaskRule(0.5), percdamp=0.01)
