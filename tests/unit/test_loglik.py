"""compfair.loglik: batched per-token log-likelihoods against one-sequence-at-a-time loops."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from compfair.loglik import token_log_likelihoods


def _hand_log_probs(model, ids: list[int], start: int) -> list[float]:
    """log p(ids[t] | ids[:t]) for t >= start, each from its own forward pass of ids[:t]."""
    out = []
    with torch.no_grad():
        for t in range(start, len(ids)):
            logits = model(input_ids=torch.tensor([ids[:t]])).logits[0, -1].double()
            out.append(float(torch.log_softmax(logits, dim=-1)[ids[t]]))
    return out


def _random_sequences(n: int, vocab: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 30, (n,), generator=g).tolist()
    return [torch.randint(0, vocab, (k,), generator=g).tolist() for k in lengths]


@pytest.mark.parametrize("factory", ["gpt2_factory", "llama_factory"])
def test_values_match_a_hand_loop_over_prefixes(factory, request):
    model = request.getfixturevalue(factory)().eval()
    seqs = [[5, 17, 3, 99, 42, 8, 8, 61], [7, 1, 2], [11, 12, 13, 14, 15, 16]]
    starts = [3, 1, 5]
    got = token_log_likelihoods(model, seqs, starts, batch_size=2)
    for seq, start, values in zip(seqs, starts, got, strict=True):
        expected = _hand_log_probs(model, seq, start)
        assert values.dtype == np.float64 and values.shape == (len(seq) - start,)
        np.testing.assert_allclose(values, expected, atol=1e-5, rtol=0)
    # The sum a caller takes is the hand loop's sum.
    assert float(got[0].sum()) == pytest.approx(sum(_hand_log_probs(model, seqs[0], 3)), abs=1e-5)


def test_batching_padding_and_order_do_not_change_values(tiny_llama):
    model = tiny_llama.eval()
    seqs = _random_sequences(11, 100, seed=3)
    starts = [1 + (i % (len(s) - 1)) for i, s in enumerate(seqs)]
    reference = token_log_likelihoods(model, seqs, starts, batch_size=1)
    for batch_size, pad_id in ((4, 0), (16, 57), (3, 99)):
        got = token_log_likelihoods(model, seqs, starts, batch_size=batch_size, pad_id=pad_id)
        for a, b in zip(reference, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    perm = np.random.default_rng(0).permutation(len(seqs))
    shuffled = token_log_likelihoods(
        model, [seqs[i] for i in perm], [starts[i] for i in perm], batch_size=5
    )
    for j, i in enumerate(perm):
        np.testing.assert_allclose(shuffled[j], reference[i], atol=1e-5, rtol=0)


class TableLM:
    """Logits at a position are row ``input_ids[t]`` of a fixed table: a bigram model."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.table = logits
        self.config = SimpleNamespace(n_positions=8)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        assert input_ids.shape == attention_mask.shape
        self.calls.append(tuple(input_ids.shape))
        return SimpleNamespace(logits=self.table[input_ids])


def test_log_probs_of_a_model_with_known_logits():
    # Row 0 gives p(1) = e^2 / (e^2 + 2); row 1 is uniform over 3 tokens; row 2 gives p(0) = 1/2.
    table = torch.tensor([[0.0, 2.0, 0.0], [5.0, 5.0, 5.0], [math.log(2.0), 0.0, 0.0]])
    model = TableLM(table)
    got = token_log_likelihoods(model, [[0, 1, 2, 0], [2, 0]], [1, 1], batch_size=8)
    p01 = math.exp(2.0) / (math.exp(2.0) + 2.0)
    np.testing.assert_allclose(got[0], [math.log(p01), math.log(1 / 3), math.log(0.5)], atol=1e-6)
    np.testing.assert_allclose(got[1], [math.log(0.5)], atol=1e-6)
    # One batch, longest first, right-padded to the longest sequence.
    assert model.calls == [(2, 4)]
    # Scoring from the end gives nothing; from 2 the first token's term is dropped.
    tail = token_log_likelihoods(model, [[0, 1, 2, 0], [2, 0]], [2, 2], batch_size=1)
    np.testing.assert_allclose(tail[0], got[0][1:], atol=0)
    assert tail[1].shape == (0,)
    assert model.calls[1:] == [(1, 4), (1, 2)]


def test_refusals_name_the_problem(tiny_gpt2):
    with pytest.raises(ValueError, match="sequence 1 has 65 tokens, more than the model's 64"):
        token_log_likelihoods(tiny_gpt2, [[1, 2], list(range(65))], [1, 1])
    with pytest.raises(ValueError, match=r"sequence 0: score_from must be in \[1, 3\]"):
        token_log_likelihoods(tiny_gpt2, [[1, 2, 3]], [0])
    with pytest.raises(ValueError, match=r"score_from must be in \[1, 3\].*got 4"):
        token_log_likelihoods(tiny_gpt2, [[1, 2, 3]], [4])
    with pytest.raises(ValueError, match="2 sequences but 1 score_from"):
        token_log_likelihoods(tiny_gpt2, [[1, 2], [3, 4]], [1])
    with pytest.raises(ValueError, match="batch_size"):
        token_log_likelihoods(tiny_gpt2, [[1, 2]], [1], batch_size=0)
    assert token_log_likelihoods(tiny_gpt2, [], []) == []


def test_eval_mode_for_scoring_and_training_mode_restored(tiny_gpt2):
    model = tiny_gpt2.train()  # dropout on: scores would be random if it stayed on
    first = token_log_likelihoods(model, [[1, 2, 3, 4, 5]], [1])[0]
    second = token_log_likelihoods(model, [[1, 2, 3, 4, 5]], [1])[0]
    np.testing.assert_array_equal(first, second)
    assert model.training
    np.testing.assert_allclose(first, _hand_log_probs(model.eval(), [1, 2, 3, 4, 5], 1), atol=1e-5)


def test_half_precision_model_gives_float64_close_to_float32(tiny_gpt2):
    seqs = [[3, 1, 4, 1, 5, 9, 2, 6]]
    full = token_log_likelihoods(tiny_gpt2.eval(), seqs, [1])[0]
    half = token_log_likelihoods(tiny_gpt2.to(torch.bfloat16), seqs, [1])[0]
    assert half.dtype == np.float64
    # bfloat16 keeps about 3 significant digits of each activation.
    np.testing.assert_allclose(half, full, atol=0.05)
