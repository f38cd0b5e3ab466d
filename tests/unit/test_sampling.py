"""Tests for compfair.sampling: the exact nucleus, its top-k pre-cut, draws and keyed variates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import compfair.sampling as sampling
from compfair.io import InputError
from compfair.sampling import (
    Nucleus,
    draw,
    mix64,
    nucleus,
    row_key,
    step_keys,
    token_exponentials,
)

V = 64


def reference(row: torch.Tensor, top_p: float, temperature: float = 1.0):
    """Plain full-sort nucleus of one row: (token ids in canonical order, renormalised probs)."""
    scaled = row.float() / temperature if temperature != 1.0 else row.float()
    lse = float(torch.logsumexp(scaled, 0))
    values = scaled.tolist()
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    p = [math.exp(values[i] - lse) for i in order]
    n = len(order)
    if top_p < 1.0:
        total = 0.0
        for j, q in enumerate(p):
            total += q
            if total >= top_p:
                n = j + 1
                break
    mass = sum(p[:n])
    return order[:n], [q / mass for q in p[:n]]


def logits(values: dict[tuple[int, ...] | int, float], fill: float = 0.0) -> torch.Tensor:
    z = torch.full((V,), fill)
    for ids, value in values.items():
        z[list(ids) if isinstance(ids, tuple) else ids] = value
    return z


def softmax(z: torch.Tensor) -> torch.Tensor:
    return torch.softmax(z.double(), 0)


PEAKED = logits({7: 5.0, 3: 4.0, 11: 3.0})
TIES = (3, 17, 33, 50, 61)
TIED = logits({40: 5.0, TIES: 4.0})
_p40, _ptie = softmax(TIED)[40].item(), softmax(TIED)[3].item()
AT_KTH = logits({10: 6.0, 20: 5.9, (1, 2, 3): 4.0})

# (name, logits, top_p, temperature, top_k_cut, expected ids, whether the full sort may run)
CASES = [
    ("peaked, one token", PEAKED, 0.5, 1.0, 2, [7], False),
    ("peaked, two tokens", PEAKED, 0.7, 1.0, 2, [7, 3], False),
    # the nucleus ends inside a tie that reaches past the k = 2 kept tokens: k = 2 is rejected,
    # k = 8 keeps the whole tie, and the lowest id of the tie is the one in the nucleus
    ("boundary in a tie past k", TIED, _p40 + 0.5 * _ptie, 1.0, 2, [40, 3], False),
    ("boundary in a tie, two of five", TIED, _p40 + 1.5 * _ptie, 1.0, 2, [40, 3, 17], False),
    # the 3rd kept value ties tokens outside, but the nucleus ends before it: k = 3 suffices
    ("tie at the k-th, boundary before", AT_KTH, 0.6, 1.0, 3, [10, 20], False),
    ("flat: full sort", torch.zeros(V), 0.9, 1.0, 2, list(range(58)), True),
    ("temperature 0.5", PEAKED, 0.7, 0.5, 2, [7], False),
    ("one-hot", logits({5: 0.0}, fill=float("-inf")), 0.9, 1.0, 2, [5], False),
]


@pytest.mark.parametrize(
    "name, z, top_p, temperature, cut, expected, may_sort", CASES, ids=[c[0] for c in CASES]
)
def test_nucleus_equals_full_sort_reference(
    monkeypatch: pytest.MonkeyPatch, name, z, top_p, temperature, cut, expected, may_sort
) -> None:
    sorts = []
    real_sort = sampling._sort_path
    monkeypatch.setattr(
        sampling, "_sort_path", lambda *a: sorts.append(1) or real_sort(*a), raising=True
    )
    nuc = nucleus(z[None, :], top_p, temperature, top_k_cut=cut)
    ref_ids, ref_p = reference(z, top_p, temperature)
    size = int(nuc.size[0])
    assert ref_ids == expected
    assert nuc.ids[0, :size].tolist() == expected
    assert nuc.probabilities()[0, :size].tolist() == pytest.approx(ref_p, rel=1e-12, abs=1e-15)
    assert float(nuc.probabilities()[0].sum()) == pytest.approx(1.0, abs=1e-12)
    assert bool(sorts) == may_sort


def test_boundary_in_a_tie_rejects_the_first_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = sampling._topk_path

    def spy(scaled, lse, top_p, k):
        out = real(scaled, lse, top_p, k)
        calls.append((k, out[3].tolist()))
        return out

    monkeypatch.setattr(sampling, "_topk_path", spy)
    nucleus(TIED[None, :], _p40 + 0.5 * _ptie, top_k_cut=2)
    assert calls == [(2, [False]), (8, [True])]


def test_top_p_one_is_the_whole_softmax() -> None:
    for z in (PEAKED, logits({5: 0.0}, fill=float("-inf"))):
        nuc = nucleus(z[None, :], 1.0)
        ids = nuc.ids[0].tolist()
        assert int(nuc.size[0]) == V and sorted(ids) == list(range(V))
        assert ids == reference(z, 1.0)[0]
        p = nuc.probabilities()[0]
        assert p.tolist() == pytest.approx(softmax(z)[ids].tolist(), rel=1e-6, abs=1e-15)
    one_hot = nucleus(logits({5: 0.0}, fill=float("-inf"))[None, :], 1.0)
    assert draw(one_hot, torch.tensor([0.999999])).tolist() == [5]


def test_canonical_sort_is_torchs_stable_sort() -> None:
    # Ties (runs of equal values), both zeros, -inf, subnormals and large magnitudes.
    gen = torch.Generator().manual_seed(3)
    z = (
        torch.randn(6, 5000, generator=gen)
        * torch.tensor([1e-3, 1.0, 30.0, 1.0, 1.0, 1.0])[:, None]
    )
    z[1, 100:400] = 0.25
    z[2, ::7] = float("-inf")
    z[3, :50], z[3, 50:100] = 0.0, -0.0
    z[4, :20] = 1e-42  # subnormal
    z[5] = z[5].round()  # few distinct values: most tokens tied
    values, ids = sampling.canonical_sort(z)
    ref_values, ref_ids = torch.sort(z, dim=1, descending=True, stable=True)
    assert torch.equal(ids, ref_ids)
    assert torch.equal(values, ref_values)


def test_topk_and_sort_paths_agree_bit_for_bit() -> None:
    # Peaked and flat rows of a larger vocabulary; top_k_cut = vocab forces the full sort.
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor([8.0, 6.0, 4.0, 2.0, 0.5] * 4)[:, None]
    z = torch.randn(20, 8192, generator=gen) * scale
    z[0, :10] = z[0].max() + 1.0  # a tie among the most likely tokens
    fast, slow = nucleus(z, 0.9), nucleus(z, 0.9, top_k_cut=8192)
    assert torch.equal(fast.size, slow.size)
    for b in range(20):
        n = int(fast.size[b])
        assert torch.equal(fast.ids[b, :n], slow.ids[b, :n])
        assert torch.equal(fast.cumulative[b, :n], slow.cumulative[b, :n])
        assert fast.ids[b, :n].tolist() == reference(z[b], 0.9)[0]
    assert fast.ids[0, :10].tolist() == list(range(10))  # the tie in ascending id order


def test_rows_are_independent_of_their_batch() -> None:
    rows = [PEAKED, TIED, torch.zeros(V), AT_KTH]
    together = nucleus(torch.stack(rows), 0.7, top_k_cut=2)
    for b, z in enumerate(rows):
        alone = nucleus(z[None, :], 0.7, top_k_cut=2)
        n = int(alone.size[0])
        assert int(together.size[b]) == n
        assert torch.equal(together.ids[b, :n], alone.ids[0, :n])
        assert torch.equal(together.cumulative[b, :n], alone.cumulative[0, :n])


def test_draw_is_the_exponential_race() -> None:
    cum = torch.tensor([[0.5, 0.8, 1.0]], dtype=torch.float64)
    keys = step_keys(np.arange(50, dtype=np.uint64), 2)
    many = Nucleus(torch.tensor([[9, 4, 6]]).repeat(50, 1), cum.repeat(50, 1), torch.full((50,), 3))
    # by hand: the token with the smallest E_i / p_i, p = (0.5, 0.3, 0.2)
    e = token_exponentials(keys, many.ids.numpy())
    expected = [[9, 4, 6][int(np.argmin(row / [0.5, 0.3, 0.2]))] for row in e]
    assert draw(many, keys).tolist() == expected
    assert len(set(expected)) == 3
    # a nucleus of 2 inside 3 cumulative entries: token 6 never wins, however small its variate
    two = Nucleus(many.ids, cum.repeat(50, 1), torch.full((50,), 2))
    assert set(draw(two, keys).tolist()) == {9, 4}
    assert draw(two, keys).tolist() == [[9, 4][int(np.argmin(row[:2] / [0.5, 0.3]))] for row in e]


def test_a_draw_belongs_to_the_token_not_to_its_rank() -> None:
    # The same tokens and probabilities listed in another order draw the same token: the variates
    # are keyed by token id, so a near-tie that swaps places between two models changes nothing.
    ids = torch.tensor([[9, 4, 6]])
    probs = torch.tensor([[0.34, 0.33, 0.33]], dtype=torch.float64)
    order = [2, 0, 1]
    keys = step_keys(np.arange(200, dtype=np.uint64), 0)

    def nuc(i: torch.Tensor, q: torch.Tensor) -> Nucleus:
        return Nucleus(i.repeat(200, 1), q.cumsum(1).repeat(200, 1), torch.full((200,), 3))

    assert torch.equal(draw(nuc(ids, probs), keys), draw(nuc(ids[:, order], probs[:, order]), keys))


def test_close_distributions_draw_the_same_token() -> None:
    # Gumbel-max coupling: two nuclei at total-variation distance d disagree on at most a share
    # 2d / (1 + d) of the keys. Here the two leading tokens trade 0.01 of mass (d = 0.01) and swap
    # places, which sends an inverse CDF with a shared uniform to a different token 60 % of the time.
    ids = torch.tensor([[9, 4, 6, 1]])
    p = torch.tensor([[0.305, 0.295, 0.2, 0.2]], dtype=torch.float64)
    q = torch.tensor([[0.295, 0.305, 0.2, 0.2]], dtype=torch.float64)
    n = 20_000
    keys = step_keys(np.arange(n, dtype=np.uint64), 5)

    def nuc(q_: torch.Tensor) -> Nucleus:
        return Nucleus(ids.repeat(n, 1), q_.cumsum(1).repeat(n, 1), torch.full((n,), 4))

    disagree = float((draw(nuc(p), keys) != draw(nuc(q), keys)).double().mean())
    assert disagree <= 2 * 0.01 / 1.01 + 0.004  # bound plus ~4 standard errors
    assert disagree > 0.0


# --------------------------------------------------------------------------
# Statistics: sampled frequencies against the renormalised nucleus
# --------------------------------------------------------------------------

N_DRAWS = 200_000
STAT_LOGITS = logits({0: 3.0, 1: 2.5, 2: 2.0, 3: 1.5, 4: 1.0, 5: 0.5, 6: 0.25}, fill=-2.0)
STAT_TOP_P = 0.8


def fit_pvalue(draws: torch.Tensor, ids: list[int], probs: list[float]) -> float:
    """Chi-square p-value of ``draws`` against the nucleus ``ids``/``probs``; 0 if any is outside."""
    counts = torch.bincount(draws, minlength=V).double()
    if counts.sum() != counts[ids].sum():
        return 0.0
    expected = np.asarray(probs) * len(draws)
    return float(stats.chisquare(counts[ids].numpy(), expected).pvalue)


def _keys(n: int) -> np.ndarray:
    return step_keys(np.arange(n, dtype=np.uint64), 3)


def _correct(nuc: Nucleus, keys: np.ndarray) -> torch.Tensor:
    return draw(nuc, keys)


def _unweighted(nuc: Nucleus, keys: np.ndarray) -> torch.Tensor:
    # the race without the probabilities: every nucleus token equally likely
    flat = torch.arange(1, nuc.ids.shape[1] + 1, dtype=torch.float64).expand_as(nuc.cumulative)
    return draw(Nucleus(nuc.ids, flat.contiguous(), nuc.size), keys)


def _one_token_too_many(nuc: Nucleus, keys: np.ndarray) -> torch.Tensor:
    return draw(Nucleus(nuc.ids, nuc.cumulative, nuc.size + 1), keys)


@pytest.mark.parametrize(
    "sampler, passes",
    [(_correct, True), (_unweighted, False), (_one_token_too_many, False)],
    ids=["correct", "unweighted", "one token too many"],
)
def test_draw_frequencies_match_the_nucleus(sampler, passes: bool) -> None:
    ids, probs = reference(STAT_LOGITS, STAT_TOP_P)
    one = nucleus(STAT_LOGITS[None, :], STAT_TOP_P, top_k_cut=2)
    n = int(one.size[0])
    assert one.ids[0, :n].tolist() == ids
    # the same nucleus inside the whole canonical order, for the wrong samplers to read past it
    full = nucleus(STAT_LOGITS[None, :], 1.0)
    assert torch.equal(full.cumulative[0, :n], one.cumulative[0, :n])
    ids_, cum_ = full.ids[:, : n + 3], full.cumulative[:, : n + 3]
    many = Nucleus(ids_.repeat(N_DRAWS, 1), cum_.repeat(N_DRAWS, 1), one.size.repeat(N_DRAWS))
    pvalue = fit_pvalue(sampler(many, _keys(N_DRAWS)), ids, probs)
    if passes:
        assert pvalue > 1e-3
    else:
        assert pvalue < 1e-9


def test_nucleus_of_the_statistics_case() -> None:
    ids, probs = reference(STAT_LOGITS, STAT_TOP_P)
    p = softmax(STAT_LOGITS)
    assert ids == [0, 1, 2, 3, 4]  # cumulative 0.768 < 0.8 <= 0.815; token 5 holds 0.029
    assert float(p[:4].sum()) < STAT_TOP_P <= float(p[:5].sum())
    assert probs == pytest.approx((p[:5] / p[:5].sum()).tolist(), rel=1e-6)


# --------------------------------------------------------------------------
# Keys and uniforms
# --------------------------------------------------------------------------


def test_splitmix64_known_outputs() -> None:
    # SplitMix64 seeded with 0 (Steele, Lea & Flood 2014; Vigna's reference C code)
    first, second = 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4
    assert int(mix64(np.array([0x9E3779B97F4A7C15], np.uint64))[0]) == first
    zero = np.zeros(1, np.uint64)
    assert int(step_keys(zero, 0)[0]) == first
    assert int(step_keys(zero, 1)[0]) == second
    # token i's variate comes from output i of the stream started at the step key: key 0, id 0
    assert token_exponentials(zero, np.zeros((1, 1), np.int64))[0, 0] == -math.log(
        ((first >> 11) + 0.5) * 2.0**-53
    )


def test_variates_are_exponential_and_keyed() -> None:
    keys = np.array([row_key(7, f"p{i}", s) for i in range(200) for s in range(10)], np.uint64)
    ids = np.tile(np.arange(30), (len(keys), 1))
    e = np.concatenate([token_exponentials(step_keys(keys, t), ids).ravel() for t in range(3)])
    assert (e > 0).all() and np.isfinite(e).all()
    assert stats.kstest(e, "expon").pvalue > 1e-3
    assert len(np.unique(e)) == len(e)
    # a row's variates depend neither on the other rows in the call nor on the order of the ids
    one = token_exponentials(step_keys(keys[3:4], 2), ids[3:4, ::-1])
    assert np.array_equal(one[0, ::-1], token_exponentials(step_keys(keys, 2), ids)[3])
    with pytest.raises(InputError, match="step"):
        step_keys(keys, -1)


def test_row_key_is_stable_and_unambiguous() -> None:
    assert row_key(1, "p1", 0) == 13187853379788411083  # pinned: every file depends on it
    keys = {row_key(seed, pid, s) for seed in (0, 1) for pid in ("a", "a1", "1") for s in (0, 1)}
    assert len(keys) == 12
    assert row_key(0, "a1", 0) != row_key(0, "a", 10)


def test_bad_arguments_and_broken_logits() -> None:
    z = PEAKED[None, :]
    for kwargs, match in [
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": 0.9, "temperature": 0.0}, "temperature"),
        ({"top_p": 0.9, "top_k_cut": 0}, "top_k_cut"),
    ]:
        with pytest.raises(InputError, match=match):
            nucleus(z, **kwargs)
    with pytest.raises(InputError, match="shape"):
        nucleus(PEAKED, 0.9)
    for bad in (float("nan"), float("inf")):
        broken = PEAKED.clone()
        broken[9] = bad
        with pytest.raises(InputError, match="NaN"):
            nucleus(broken[None, :], 0.9)
