"""GPTQ: the grid, error compensation against round-to-nearest, and the check on reload."""

from __future__ import annotations

import pytest
import torch
from test_rtn import SYM_HAND

from compfair.compression import get_method
from compfair.compression.methods.gptq import _quantize, check_grid, gptq_quantize, rtn
from compfair.compression.quantize import fake_quantize, fit_grid, steps

OPTS = {"group_size": 16, "sym": False, "act_order": False, "percdamp": 0.01, "blocksize": 128}


def _layer(rows: int = 24, cols: int = 64, tokens: int = 512, seed: int = 0):
    """A weight, the Hessian ``2 X^T X / n`` and the inputs ``X`` (correlated features)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, cols, generator=g)
    x = torch.randn(tokens, 16, generator=g) @ torch.randn(16, cols, generator=g)
    x = x + 0.3 * torch.randn(tokens, cols, generator=g)
    return weight, 2 * x.t() @ x / tokens, x


def test_grid_by_hand() -> None:
    # 2 bits, asymmetric, range [-1, 2]: scale 1, zero 1, grid {-1, 0, 1, 2}.
    x = torch.tensor([[-1.0, 0.6, 2.0, 1.4]])
    scale, zero = fit_grid(x, 2, sym=False)
    assert scale.tolist() == [1.0] and zero.tolist() == [1.0]
    assert _quantize(x, scale, zero, 2).tolist() == [[-1.0, 1.0, 2.0, 1.0]]
    # Symmetric, 2 bits: range [-2, 2], scale 4/3, zero 2, grid {-8/3, -4/3, 0, 4/3}.
    scale, zero = fit_grid(x, 2, sym=True)
    assert scale.item() == pytest.approx(4 / 3) and zero.tolist() == [2.0]
    torch.testing.assert_close(
        _quantize(x, scale, zero, 2), torch.tensor([[-4 / 3, 0.0, 4 / 3, 4 / 3]])
    )
    # A row of zeros gets the range [-1, 1] (zero round(7.49999...) = 7 in fp32);
    # a positive row's range still starts at 0.
    scale, zero = fit_grid(torch.tensor([[0.0, 0.0], [1.0, 3.0]]), 4, sym=False)
    assert scale.tolist() == pytest.approx([2 / 15, 3 / 15]) and zero.tolist() == [7.0, 0.0]
    assert _quantize(torch.tensor([[0.0, 0.0]]), scale[:1], zero[:1], 4).tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("bits", list(SYM_HAND))
def test_symmetric_grid_by_hand_is_rtns(bits: int) -> None:
    # A diagonal H (uncorrelated inputs) leaves GPTQ nothing to compensate, so
    # its values are RTN's hand-computed ones, exactly (the rows are dyadic).
    row, _, _, values = SYM_HAND[bits]
    hessian = torch.diag(torch.arange(1.0, len(row) + 1))
    opts = {**OPTS, "group_size": None, "sym": True}
    assert gptq_quantize(torch.tensor([row]), hessian, bits, opts).tolist() == [values]
    assert rtn(torch.tensor([row]), bits, None, sym=True).tolist() == [values]


def _per_column(per_group: torch.Tensor, group_size: int | None, cols: int) -> torch.Tensor:
    """A ``[rows, n_groups]`` tensor repeated over each group's columns: ``[rows, cols]``."""
    return per_group.repeat_interleave(group_size or cols, dim=1)[:, :cols]


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("group_size", [16, None])
@pytest.mark.parametrize("sym", [True, False])
def test_gptq_with_a_diagonal_hessian_is_rtn(
    sym: bool, group_size: int | None, act_order: bool
) -> None:
    # Uncorrelated inputs make H diagonal: no error reaches another column, so
    # GPTQ must round every weight onto the grid RTN (the rtn method) uses.
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(24, 64, generator=g)
    hessian = torch.diag(torch.rand(64, generator=g) + 0.5)  # act_order: a real permutation
    opts = {**OPTS, "group_size": group_size, "sym": sym, "act_order": act_order}
    quantized = gptq_quantize(weight, hessian, 4, opts)
    stored, grids, codes = fake_quantize(weight, 4, group_size, sym)
    assert grids.zero.eq(8).all() if sym else grids.zero.ne(8).any()
    # GPTQ's values are scale * (integer - zero) for RTN's scale and zero of each group.
    step, zero = steps(grids, 64), _per_column(grids.zero, group_size, 64)
    units = quantized.double() / step + zero
    assert (units - units.round()).abs().max() < 1e-4
    # And the same integers, except where w / scale is a rounding tie (symmetric:
    # w = -M, 7.5 steps) that fp32 (GPTQ) and fp64 (RTN) may break differently.
    ratio = weight.double() / step
    tie = ((ratio - ratio.floor()) - 0.5).abs() < 1e-5
    differ = units.round() != codes
    assert not (differ & ~tie).any()
    assert int(differ.sum()) <= int(tie.sum()) <= grids.scale.numel()
    torch.testing.assert_close(quantized[~differ], stored[~differ], rtol=0, atol=1e-6)


@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("group_size", [16, None])
def test_gptq_beats_round_to_nearest_on_the_output(bits: int, group_size: int | None) -> None:
    weight, hessian, x = _layer()
    opts = {**OPTS, "group_size": group_size}
    quantized = gptq_quantize(weight, hessian, bits, opts)
    nearest = rtn(weight, bits, group_size, sym=False)
    err_gptq = (x @ (weight - quantized).t()).norm()
    err_rtn = (x @ (weight - nearest).t()).norm()
    assert err_gptq < 0.6 * err_rtn
    # At most 2^bits values per row and group, all on one grid through 0.
    gs = group_size or 64
    groups = quantized.reshape(24, 64 // gs, gs)
    distinct = max(len(set(g.tolist())) for row in groups for g in row)
    assert 2 <= distinct <= 2**bits
    assert check_grid(quantized, bits, group_size, "w")["max_distinct_per_group"] == distinct


@pytest.mark.parametrize("sym", [False, True])
def test_values_equal_scale_times_integer_of_their_group(sym: bool) -> None:
    weight, hessian, _ = _layer()
    quantized = gptq_quantize(weight, hessian, 4, {**OPTS, "sym": sym, "act_order": True})
    # act_order fixes each group's grid from the unquantized weights up front.
    for start in range(0, 64, 16):
        scale, zero = fit_grid(weight[:, start : start + 16], 4, sym)
        q = quantized[:, start : start + 16] / scale.unsqueeze(1) + zero.unsqueeze(1)
        torch.testing.assert_close(q, q.round(), atol=1e-4, rtol=0)
        assert q.round().min() >= 0 and q.round().max() <= 15


def test_act_order_still_beats_round_to_nearest() -> None:
    weight, hessian, x = _layer(seed=2)
    quantized = gptq_quantize(weight, hessian, 4, {**OPTS, "act_order": True})
    nearest = rtn(weight, 4, 16, sym=False)
    assert (x @ (weight - quantized).t()).norm() < (x @ (weight - nearest).t()).norm()


@pytest.mark.parametrize("blocksize", [5, 16, 40])
def test_result_does_not_depend_on_the_block_size(blocksize: int) -> None:
    # Groups of 16 straddle blocks of 5 or 40 columns: a group's grid is taken
    # from the weights with the pending lazy update added (Sweep.current).
    weight, hessian, _ = _layer()
    reference = gptq_quantize(weight, hessian, 4, {**OPTS, "blocksize": 1})
    result = gptq_quantize(weight, hessian, 4, {**OPTS, "blocksize": blocksize})
    torch.testing.assert_close(result, reference, atol=1e-4, rtol=1e-4)


def test_check_grid_refuses_unquantized_and_nudged_values() -> None:
    weight, hessian, _ = _layer()
    with pytest.raises(RuntimeError, match="raw: a group of columns 0..63 holds 64 distinct"):
        check_grid(weight, 4, None, "raw")
    with pytest.raises(RuntimeError, match="raw: rows .* of columns 0..15 are not on a 4-bit"):
        check_grid(weight, 4, 16, "raw")  # 16 values: few enough, but on no grid
    quantized = gptq_quantize(weight, hessian, 4, OPTS)
    check_grid(quantized, 4, 16, "ok")
    nudged = quantized.clone()
    nudged[3, 20] += 0.3 * (quantized[3, 16:32].max() - quantized[3, 16:32].min()) / 15
    with pytest.raises(RuntimeError, match=r"nudged: rows \[3\] of columns 16..31"):
        check_grid(nudged, 4, 16, "nudged")
    with pytest.raises(RuntimeError, match="16 distinct values, more than 2\\^3"):
        check_grid(rtn(weight, 4, None, False), 3, None, "four_bits")
    # Three values, but 9 steps apart: no 3-bit grid (8 points) holds them.
    with pytest.raises(RuntimeError, match="wide: rows \\[0\\] .* not on a 3-bit grid"):
        check_grid(torch.tensor([[0.0, 0.1, 0.9, 0.9]]), 3, None, "wide")


def test_grid_found_when_no_neighbouring_levels_are_used() -> None:
    # Levels 0, 2 and 5 of a step of 0.1: smallest gap 0.2 is not the step.
    values = torch.tensor([[0.0, 0.2, 0.5, 0.5]])
    check_grid(values, 3, None, "gcd")
    with pytest.raises(RuntimeError, match="2-bit grid"):
        check_grid(values, 2, None, "gcd")  # 0..5 steps need 6 points


def test_grid_found_when_only_odd_levels_are_used() -> None:
    # Seen in a GPTQ'd Falcon row: levels -5, -3, -1, 1, 3, 9 of a step s. The
    # gaps are all 2s, yet the grid must pass through 0, so the step is s.
    s = 0.0039169979
    values = torch.tensor([[-5.0, -3.0, -1.0, 1.0, 3.0, 9.0, 3.0, -1.0]]) * s
    check_grid(values, 4, None, "odd")  # -5..9: 14 steps, 15 allowed
    with pytest.raises(RuntimeError, match="3-bit grid"):
        check_grid(values, 3, None, "odd")  # 14 steps do not fit 7
    # A positive group still needs the points down to 0: levels 6 and 7 need 8 points.
    check_grid(torch.tensor([[0.6, 0.7]]), 3, None, "pos")
    with pytest.raises(RuntimeError, match="2-bit grid"):
        check_grid(torch.tensor([[0.6, 0.7]]), 2, None, "pos")


def test_level_check() -> None:
    gptq = get_method("gptq")
    assert gptq.check_level(4) is None and gptq.check_level(3) is None
    assert "2 to 8 bits" in gptq.check_level(1)
    assert gptq.defaults() == {
        "group_size": 128,
        "sym": False,
        "act_order": False,
        "percdamp": 0.01,
        "blocksize": 128,
    }
