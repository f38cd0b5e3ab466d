"""Wanda: |W_ij| * ||X_j|| per output row, on hand-made layers with given activations."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from compfair.architecture import weight_out_in
from compfair.compression import Context, get_method
from compfair.compression.calibrate import LayerInputs
from compfair.compression.methods.wanda import check_row_sparsity, prune_rows, wanda_scores

# Two calibration tokens whose activations give input norms ||X_j|| = [3, 1, 0.5, 2].
ACTIVATIONS = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.5, 2.0]])
WEIGHT = torch.tensor([[1.0, 2.0, 3.0, 4.0], [-4.0, 3.0, -2.0, 1.0]])  # [out, in]
# Scores row 0: [1*3, 2*1, 3*0.5, 4*2] = [3, 2, 1.5, 8] -> prune columns 2 and 1.
# Scores row 1: [4*3, 3*1, 2*0.5, 1*2] = [12, 3, 1, 2] -> prune columns 2 and 3.
WANDA_50 = torch.tensor([[1.0, 0.0, 0.0, 4.0], [-4.0, 3.0, 0.0, 0.0]])
# Magnitude per row would prune the 1 and the 2 of row 0 instead.
MAGNITUDE_50 = torch.tensor([[0.0, 0.0, 3.0, 4.0], [-4.0, 3.0, 0.0, 0.0]])


class _Block(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, hidden: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return self.layer(hidden)


class _ToyLM(nn.Module):
    """Token i embeds to ACTIVATIONS[i]; one block holding the layer under test."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(model_type="toy", num_hidden_layers=1)
        self.embed = nn.Embedding.from_pretrained(ACTIVATIONS.clone())
        self.layers = nn.ModuleList([_Block(layer)])

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        hidden = self.embed(input_ids)
        for block in self.layers:
            hidden = block(hidden)
        return hidden


def _layer(kind: str) -> nn.Module:
    layer = nn.Linear(4, 2) if kind == "linear" else Conv1D(nf=2, nx=4)
    with torch.no_grad():
        weight_out_in(layer).copy_(WEIGHT)
    return layer


def test_column_norms_and_scores_by_hand() -> None:
    stats = LayerInputs("norms")
    stats.add(ACTIVATIONS)
    assert stats.n_rows == 2
    torch.testing.assert_close(stats.column_norms(), torch.tensor([3.0, 1.0, 0.5, 2.0]))
    scores = wanda_scores(WEIGHT, stats.column_norms())
    torch.testing.assert_close(scores, torch.tensor([[3.0, 2.0, 1.5, 8.0], [12.0, 3.0, 1.0, 2.0]]))


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_wanda_prunes_the_hand_computed_entries(kind: str) -> None:
    layer = _layer(kind)
    model = _ToyLM(layer)
    calibration = torch.tensor([[0, 1]])
    with torch.no_grad():
        report = get_method("wanda").apply(model, 0.5, {}, Context(seed=0, calibration=calibration))
    assert torch.equal(weight_out_in(layer), WANDA_50)
    assert not torch.equal(WANDA_50, MAGNITUDE_50)
    assert report["measured"] == report["target"] == 0.5
    assert report["per_matrix"] == {"layers.0.layer.weight": 0.5}
    assert report["calibration"] == {"n_sequences": 1, "seq_len": 2, "tokens": 2}
    assert get_method("wanda").verify(model, 0.5, {}, report) == {"measured_after_reload": 0.5}


def test_wanda_equals_magnitude_when_inputs_have_equal_norms() -> None:
    weight = WEIGHT.clone()
    prune_rows(weight, wanda_scores(weight, torch.ones(4)), 0.5)
    assert torch.equal(weight, MAGNITUDE_50)


def test_each_row_loses_round_s_times_in() -> None:
    torch.manual_seed(0)
    weight = torch.randn(6, 10)
    k = prune_rows(weight, weight.abs() * torch.rand(10), 0.33)  # round(3.3) = 3
    assert k == 3
    assert (weight == 0).sum(dim=1).tolist() == [3] * 6
    assert prune_rows(torch.ones(2, 10), torch.ones(2, 10), 0.04) == 0  # round(0.4) = 0


def test_ties_go_to_the_first_columns() -> None:
    weight = torch.ones(1, 4)
    prune_rows(weight, torch.ones(1, 4), 0.5)
    assert weight.tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_verify_refuses_a_row_with_too_few_zeros() -> None:
    layer = _layer("linear")
    model = _ToyLM(layer)
    with torch.no_grad():
        weight_out_in(layer).copy_(WANDA_50)
        weight_out_in(layer)[1, 3] = 1.0  # row 1 now has one zero
    with pytest.raises(RuntimeError, match=r"layers.0.layer: 1 of 2 rows have fewer than 2 zeros"):
        check_row_sparsity(model, 0.5, 0.005)


def test_wanda_without_calibration_says_so() -> None:
    with pytest.raises(RuntimeError, match="'wanda' needs calibration"):
        get_method("wanda").apply(_ToyLM(_layer("linear")), 0.5, {}, Context(seed=0))
