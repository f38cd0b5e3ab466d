"""Tests for round-to-nearest weight-only quantization (``rtn``) and its grids."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from test_structured import END_TO_END
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.pytorch_utils import Conv1D

from compfair.architecture import compressible_matrices, weight_out_in
from compfair.compression import get_method
from compfair.compression.quantize import (
    fake_quantize,
    fit_grid,
    grid_values,
    grid_violations,
    quantize_model,
    steps,
    verify_model,
)
from compfair.compression.run import compress_model
from compfair.variants import build_variants, variant_problems
from tests.support import make, save_tiny_folder

W = torch.tensor([[0.3, -0.6, 0.9, 0.0], [1.0, 2.2, 3.0, 4.0]])

#: (sym, group_size) -> (grid values, codes), every one worked out by hand for W at 2 bits.
HAND = {
    # asymmetric, per row: row 0 lo=-0.6 hi=0.9 -> scale 0.5, zero round(1.2)=1;
    # row 1 lo=0 (0 is always in range) hi=4 -> scale 4/3, zero 0; 2.2/(4/3)=1.65 -> 2.
    (False, None): (
        [[0.5, -0.5, 1.0, 0.0], [4 / 3, 8 / 3, 8 / 3, 4.0]],
        [[2, 0, 3, 1], [1, 2, 2, 3]],
    ),
    # asymmetric, groups of 2: [0.3, -0.6] scale 0.3 zero 2; [0.9, 0] scale 0.3 zero 0;
    # [1.0, 2.2] scale 2.2/3 zero 0 (1.36 -> 1); [3, 4] scale 4/3 zero 0 (2.25 -> 2).
    (False, 2): ([[0.3, -0.6, 0.9, 0.0], [2.2 / 3, 2.2, 8 / 3, 4.0]], [[3, 0, 3, 0], [1, 3, 2, 3]]),
}


@pytest.mark.parametrize(("sym", "group_size"), list(HAND))
def test_two_bit_asymmetric_grids_by_hand(sym: bool, group_size: int | None) -> None:
    values, codes = HAND[(sym, group_size)]
    stored, grids, q = fake_quantize(W, 2, group_size, sym)
    assert q.tolist() == codes
    torch.testing.assert_close(stored, torch.tensor(values), rtol=0, atol=1e-6)
    assert stored.dtype == torch.float32
    assert (W - stored).abs().le(steps(grids, 4) / 2 + 1e-7).all()
    assert not grid_violations(stored, 2, group_size, sym).any()
    assert grid_violations(W, 2, group_size, sym).any()


#: Symmetric grids by hand, bits -> (row, scale, codes, values); zero is 2^(bits-1).
#: Rows are chosen so that scale and every w / scale are exact binary fractions.
SYM_HAND = {
    # M = 1.875: scale 2 * 1.875 / 15 = 0.25, zero 8, levels -8..7 steps (-2.0..1.75).
    # w / scale = 7.5, -3.2, 0.4, -7.5, 2.5, 0.6, -0.5, 5: torch.round takes ties
    # to even, so +M goes to 8 + 8 = 16, clamped to 15 (1.75), and -M to code 0 (-2.0).
    4: (
        [1.875, -0.8, 0.1, -1.875, 0.625, 0.15, -0.125, 1.25],
        0.25,
        [15, 5, 8, 0, 10, 9, 8, 13],
        [1.75, -0.75, 0.0, -2.0, 0.5, 0.25, 0.0, 1.25],
    ),
    # M = 1.75: scale 2 * 1.75 / 7 = 0.5, zero 4, levels -4..3 steps (-2.0..1.5);
    # w / scale = 3.5, 1.4, -2.6, 0, -1.5, 2.5. Code 0 (-2.0) goes unused.
    3: (
        [1.75, 0.7, -1.3, 0.0, -0.75, 1.25],
        0.5,
        [7, 5, 1, 4, 2, 6],
        [1.5, 0.5, -1.5, 0.0, -1.0, 1.0],
    ),
    # M = 0.75: scale 2 * 0.75 / 3 = 0.5, zero 2, grid {-1.0, -0.5, 0, 0.5};
    # w / scale = 1.5, -1.5, 0.4, -0.6, 1.
    2: ([0.75, -0.75, 0.2, -0.3, 0.5], 0.5, [3, 0, 2, 1, 3], [0.5, -1.0, 0.0, -0.5, 0.5]),
}


@pytest.mark.parametrize("bits", list(SYM_HAND))
def test_symmetric_grid_by_hand(bits: int) -> None:
    row, scale, codes, values = SYM_HAND[bits]
    w = torch.tensor([row])
    stored, grids, q = fake_quantize(w, bits, None, True)
    assert grids.scale.tolist() == [[scale]] and grids.zero.tolist() == [[2 ** (bits - 1)]]
    assert q.tolist() == [codes]
    assert stored.tolist() == [values]
    # The same grid from the shared function on fp32 input, as GPTQ calls it.
    assert [t.tolist() for t in fit_grid(w, bits, sym=True)] == [[scale], [2 ** (bits - 1)]]
    # Every weight within half a step; +-M (the first two of the 2-bit row) exactly half.
    err = (w - stored).abs() / scale
    assert err.max().item() == 0.5 and (err <= 0.5).all()
    assert not grid_violations(stored, bits, None, True).any()
    assert grid_violations(w, bits, None, True).all()


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = Conv1D(nf=2, nx=4)  # stores [in, out]
        self.linear = nn.Linear(4, 2)  # stores [out, in]


def test_quantize_model_writes_both_layer_types_by_hand() -> None:
    model = nn.Module()
    model.config = types.SimpleNamespace(model_type="toy", num_hidden_layers=1)
    model.layers = nn.ModuleList([_Block()])
    with torch.no_grad():
        model.layers[0].conv.weight.copy_(W.t())
        model.layers[0].linear.weight.copy_(W)
    report = quantize_model(model, 2, None, False)
    hand = torch.tensor(HAND[(False, None)][0])
    torch.testing.assert_close(model.layers[0].conv.weight.t(), hand, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.layers[0].linear.weight, hand, rtol=0, atol=1e-6)
    # Errors by hand: row 0 is off by 0.2, 0.1, 0.1, 0; row 1 by 1/3, 7/15, 1/3, 0.
    entry = report["per_matrix"]["layers.0.linear.weight"]
    assert entry["max_abs_error"] == pytest.approx(7 / 15, abs=1e-6)
    sq = 0.2**2 + 0.1**2 * 2 + (1 / 3) ** 2 * 2 + (7 / 15) ** 2
    assert entry["rel_error"] == pytest.approx(
        (sq / float(W.double().square().sum())) ** 0.5, rel=1e-5
    )
    assert entry["max_error_in_steps"] == pytest.approx(0.4, abs=1e-5)  # 0.2 / 0.5, row 0
    assert report["n_matrices"] == 2 and report["scheme"] == "asymmetric"
    assert verify_model(model, 2, None, False, report)["verified_matrices"] == 2


def _distinct(values: torch.Tensor) -> int:
    return int(torch.unique(values).numel())


@pytest.mark.parametrize("sym", [False, True])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_at_most_2_to_the_b_values_per_group_within_half_a_step(bits: int, sym: bool) -> None:
    w = torch.randn(16, 300, generator=torch.Generator().manual_seed(bits)) * 0.02
    stored, grids, q = fake_quantize(w, bits, 128, sym)  # groups of 128, 128 and 44 columns
    assert grids.scale.shape == (16, 3)
    assert q.min() >= grids.qmin and q.max() <= grids.qmax
    assert torch.equal(stored, grid_values(q, grids).float())  # scale * (q - zero), in fp32
    most = max(_distinct(stored[r, s : s + 128]) for r in range(16) for s in (0, 128, 256))
    assert most <= 2**bits
    if bits == 4:  # 128 normal values use the whole grid (symmetric: -8 steps only for w = -M)
        assert most == 16
    err = (w.double() - stored.double()).abs()
    # Half a step (symmetric: w = +M is exactly that), plus the fp32 rounding of a
    # stored value of up to 2^(b-1) steps: 2^7 * 2^-24 < 1e-5 steps at 8 bits.
    assert (err / steps(grids, 300)).max() <= 0.5 + 1e-5
    assert err.max() > steps(grids, 300).min() / 4  # really rounded, not copied
    assert not grid_violations(stored, bits, 128, sym).any()
    assert grid_violations(w, bits, 128, sym).all()  # raw weights are on no grid
    if bits > 2:  # a finer grid is not a coarser one
        assert grid_violations(stored, bits - 1, 128, sym).any()
    nudged = stored.clone()
    nudged[3, 200] += float(grids.scale[3, 1]) * 0.3
    assert grid_violations(nudged, bits, 128, sym).nonzero().tolist() == [[3, 1]]


def test_error_shrinks_with_bits_and_degenerate_rows_are_exact() -> None:
    w = torch.randn(8, 256, generator=torch.Generator().manual_seed(0))
    errors = [
        float((w - fake_quantize(w, b, 64, False)[0]).norm() / w.norm()) for b in (2, 3, 4, 8)
    ]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.01
    odd = torch.stack([torch.zeros(6), torch.full((6,), 0.5), torch.full((6,), -0.25)])
    stored, grids, _ = fake_quantize(odd, 3, None, False)
    assert torch.equal(stored, odd)  # asymmetric: a constant row is an end of its grid
    assert grids.scale[0, 0].item() == 2 / 7  # all zero: the range [-1, 1]
    stored, grids, _ = fake_quantize(odd, 3, None, True)
    # Symmetric: M is 3.5 steps of 2M/7, half a step above the top level, 3 steps.
    assert grids.scale[:, 0].tolist() == [2 / 7, 1 / 7, 0.5 / 7]
    assert stored[0].eq(0).all() and stored[1].eq(torch.tensor(3 / 7)).all()
    assert ((odd - stored).abs() <= steps(grids, 6) / 2 + 1e-7).all()


def test_rtn_levels_and_options_are_checked_before_any_job() -> None:
    rtn = get_method("rtn")
    assert [rtn.check_level(b) for b in (2, 3, 4, 8)] == [None] * 4
    for bad in (1, 9, 16):
        assert "2 to 8 bits" in rtn.check_level(bad)
    config = {
        "compression": {"rtn": {"levels": [8, 4], "options": {"group_size": None, "sym": True}}}
    }
    variants = build_variants(config)
    assert [v.name for v in variants.of_family("quantization")] == ["rtn-4", "rtn-8"]
    assert variants["rtn-4"].options == {"group_size": None, "sym": True}
    assert build_variants({"compression": {"rtn": {"levels": [4]}}})["rtn-4"].options == {
        "group_size": 128,
        "sym": False,
    }
    problems = variant_problems(
        {"compression": {"rtn": {"levels": [9], "options": {"group_size": 0}}}}
    )
    assert any("levels[0]" in p and "2 to 8 bits" in p for p in problems)
    assert any("options.group_size" in p for p in problems)


@pytest.mark.parametrize(("bits", "options"), [(4, {}), (3, {"sym": True, "group_size": 16})])
@pytest.mark.parametrize("family", END_TO_END)
def test_compress_model_saves_dequantized_weights_that_verify(
    family: str, bits: int, options: dict, tmp_path: Path
) -> None:
    parent = make(family, n_layer=2)
    parent_dir = save_tiny_folder(parent, tmp_path / "parent")
    out = tmp_path / f"rtn-{bits}"
    report = compress_model(parent_dir, out, "rtn", bits, options, seed=0)
    group_size = options.get("group_size", 128)
    sym = options.get("sym", False)
    saved = json.loads((out / "compression.json").read_text())
    assert saved["bits"] == bits and saved["group_size"] == group_size
    assert report["verified_matrices"] == len(compressible_matrices(parent)) == saved["n_matrices"]
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    # Every matrix is the hand-made round-to-nearest of the parent's; nothing else moved.
    quantized = {f"{n}.weight" for n, _ in compressible_matrices(parent)}
    for (name, m_parent), (_, m_new) in zip(
        compressible_matrices(parent), compressible_matrices(reloaded), strict=True
    ):
        expected = fake_quantize(weight_out_in(m_parent), bits, group_size, sym)[0]
        assert torch.equal(weight_out_in(m_new), expected), name
    state = reloaded.state_dict()
    for key, value in parent.state_dict().items():
        if key not in quantized:
            assert torch.equal(state[key], value), key
    generated = reloaded.generate(
        torch.tensor([[5, 6]]), max_new_tokens=3, min_new_tokens=3, do_sample=False
    )
    assert generated.shape == (1, 5)
    # A reloaded weight nudged off its stored value no longer verifies.
    with torch.no_grad():
        weight_out_in(compressible_matrices(reloaded)[0][1])[0, 0] += 1e-3
    with pytest.raises(RuntimeError, match="differ from the quantized"):
        verify_model(reloaded, bits, group_size, sym, report)
