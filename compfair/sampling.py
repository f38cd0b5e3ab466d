"""Exact nucleus (top-p) sampling without sorting the vocabulary, driven by counter-based uniforms.

The nucleus
-----------
For one row of logits ``z`` over a vocabulary of ``V`` tokens and a temperature ``T``, let
``s = z / T`` (float32) and ``p_i = exp(s_i - logsumexp(s))``: the log-normaliser is taken in
float32, the exponent and every sum after it in float64. Order the tokens *canonically*: by
descending ``s_i`` (the same as descending ``p_i``), ties broken by ascending token id. The
*nucleus* is the shortest prefix of that order whose cumulative probability is ``>= top_p``; it
holds at least one token, and it is the whole vocabulary when ``top_p >= 1`` or when rounding keeps
every prefix below ``top_p``. A draw picks nucleus token ``i`` with probability
``p_i / sum(p over the nucleus)``. The draw is an *exponential race* (the Gumbel-max trick): every
token ``i`` of the vocabulary gets its own exponential variate ``E_i`` (mean 1) from the key of the
row and step, and the drawn token is the nucleus token with the smallest ``E_i / p_i``; the minimum
of independent exponentials of rates ``p_i`` falls on ``i`` with probability ``p_i / sum p``, so the
draw is exact, and a pure function of the logits and the key.

Why a race instead of an inverse CDF over the sorted nucleus: the variates belong to *token ids*,
not to positions in a probability order. Two models asked for the same continuation (a compressed
model and its parent: same prompt, sample index, seed and step) race the same ``E_i``, so they draw
the same token unless their distributions differ enough to change the winner; the chance that they
differ is at most ``2 d / (1 + d)`` for a total-variation distance ``d`` between the two nuclei
(Gumbel-max coupling). An inverse CDF with one shared uniform breaks as soon as two tokens of
nearly equal probability swap places in the order. This is common random numbers: the paired
difference between a model and its parent keeps its expectation, and loses the sampling noise the
two models do not actually differ in.

Finding the nucleus does not need a sort of the vocabulary when the distribution is peaked:
``topk(k + 1)`` (``k = top_k_cut``, 256 by default) gives the ``k`` most likely tokens; when they
already hold ``top_p`` of the mass, the nucleus is a prefix of them. ``topk`` leaves the order and the
choice among equal values unspecified, so the kept tokens are put in canonical order by a sort of
``k`` elements, and the pre-cut is rejected for a row when the ``(k+1)``-th value equals the ``k``-th
(a tie reaching outside the kept set) and the nucleus ends inside that tie: then the kept tokens of
that value need not be the lowest ids. Rejected rows retry with ``4k`` (while ``4k <= V / 8``), and
then fall back to a full canonical sort (:func:`canonical_sort`) (flat distributions: random
or broken models). Every path computes the same floats in the same order (on the CPU, where
``cumsum`` runs sequentially along a row; a CUDA scan may round a path's sums differently in the
last bit), so the path a row takes does not change its nucleus or its draw. A row's result never
depends on the other rows of the batch.

Relation to Hugging Face's ``TopPLogitsWarper``
-----------------------------------------------
The warper sorts ascending, takes the float32 cumulative softmax and removes the tokens whose
cumulative probability is ``<= 1 - top_p`` (keeping at least one), then ``multinomial`` samples the
renormalised rest. In exact arithmetic a token survives there iff the mass strictly before it in
descending order is ``< top_p``, which is the rule above, so both sample the same distribution. They
can differ (i) on ties at the boundary: its sort is not stable, so *which* of several equally likely
tokens is kept is arbitrary there, the lowest ids here; and (ii) where the cumulative mass is within
rounding of ``top_p``: it sums ~50k float32 terms from the small end, this sums float64 terms from the
large end, so a token whose inclusion hinges on the last bits can be in one nucleus and not the other.

Keys and variates
-----------------
:func:`row_key` hashes ``(seed, prompt_id, sample)`` with BLAKE2b to a 64-bit key; the key of a row
at decode step ``t`` is the ``t``-th output of a SplitMix64 stream started at the row key, and the
variate of token ``i`` at that step is ``-log u`` for ``u`` from the ``i``-th output of a SplitMix64
stream started at the step key (a counter-based generator, vectorised in NumPy ``uint64``). No global
random state is read or changed, so a continuation depends only on its key, never on the batch or
the order it was drawn in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from compfair.io import InputError

TOP_K_CUT = 256
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2^64 / golden ratio, odd
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


# --------------------------------------------------------------------------
# The nucleus
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Nucleus:
    """The nuclei of a batch of rows, in canonical order.

    ``ids`` (long) and ``cumulative`` (float64, unnormalised cumulative probabilities ``p``) have
    shape ``(B, W)``; row ``b``'s nucleus is its first ``size[b]`` entries. Past it, ``ids`` and
    ``cumulative`` hold the next tokens of the canonical order or padding (id 0, ``+inf``), so
    ``cumulative`` stays non-decreasing along a row.
    """

    ids: torch.Tensor
    cumulative: torch.Tensor
    size: torch.Tensor

    def mass(self) -> torch.Tensor:
        """The probability mass of each nucleus, shape ``(B,)`` float64."""
        return self.cumulative.gather(1, (self.size - 1)[:, None]).squeeze(1)

    def probabilities(self) -> torch.Tensor:
        """The renormalised draw probabilities, shape ``(B, W)`` float64, zero past ``size``."""
        prev = torch.nn.functional.pad(self.cumulative[:, :-1], (1, 0))
        p = (self.cumulative - prev).nan_to_num(posinf=0.0)
        inside = torch.arange(p.shape[1], device=p.device)[None, :] < self.size[:, None]
        return torch.where(inside, p, 0.0) / self.mass()[:, None]


def _check_args(logits: torch.Tensor, top_p: float, temperature: float, top_k_cut: int) -> None:
    if logits.dim() != 2 or logits.shape[1] < 1:
        raise InputError(f"logits must have shape (batch, vocab), got {tuple(logits.shape)}")
    if not 0.0 < top_p <= 1.0:
        raise InputError(f"top_p must be in (0, 1], got {top_p}")
    if temperature <= 0.0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    if top_k_cut < 1:
        raise InputError(f"top_k_cut must be >= 1, got {top_k_cut}")


def _prefix(
    values: torch.Tensor, lse: torch.Tensor, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cumulative probabilities of canonically ordered ``values`` and the nucleus size per row."""
    cumulative = torch.cumsum(torch.exp(values.double() - lse[:, None]), dim=1)
    if top_p >= 1.0:
        size = torch.full_like(lse, values.shape[1], dtype=torch.long)
    else:
        size = ((cumulative < top_p).sum(dim=1) + 1).clamp(max=values.shape[1])
    return cumulative, size


def _canonical(values: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder rows of descending ``values`` so that ties come by ascending id (two small sorts).

    Rows without equal neighbours are already canonical and are left as they are.
    """
    tied = (values[:, 1:] == values[:, :-1]).any(dim=1)
    if not bool(tied.any()):
        return values, ids
    rows = tied.nonzero().squeeze(1)
    sub_ids, by_id = torch.sort(ids[rows], dim=1)
    sub_values, order = torch.sort(
        values[rows].gather(1, by_id), dim=1, descending=True, stable=True
    )
    values, ids = values.clone(), ids.clone()
    values[rows], ids[rows] = sub_values, sub_ids.gather(1, order)
    return values, ids


def _topk_path(
    scaled: torch.Tensor, lse: torch.Tensor, top_p: float, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nucleus from a ``topk`` pre-cut; returns ``(ids, cumulative, size, exact)`` per row.

    ``exact`` is False for rows whose nucleus is longer than ``k`` tokens, or ends inside a tie that
    reaches past the ``k`` kept tokens (their ids there could be the wrong ones).
    """
    top_values, top_ids = torch.topk(scaled, k + 1, dim=1)  # sorted: descending values
    values, ids = _canonical(top_values[:, :k], top_ids[:, :k])
    cumulative, size = _prefix(values, lse, top_p)
    kth = top_values[:, k - 1 : k]
    above_kth = (values > kth).sum(dim=1)
    tie_outside = top_values[:, k] == top_values[:, k - 1]
    reached = cumulative[:, -1] >= top_p
    exact = reached & (~tie_outside | (size <= above_kth))
    return ids, cumulative, size, exact


def canonical_sort(scaled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``scaled`` (float32, ``(B, V)``) in canonical order: descending value, ties by ascending id.

    The same result as ``torch.sort(scaled, descending=True, stable=True)``. On the CPU it sorts
    one int64 key per token instead (the float's bits mapped to an order-preserving integer in the
    high half, the id in the low half): the keys are unique, so NumPy's unstable sort gives the
    canonical order, about 2.3x faster than torch's stable sort on a 50k vocabulary (flat rows:
    random or broken models). Written here because neither library sorts by (value, id) directly.
    """
    if scaled.device.type != "cpu":
        return torch.sort(scaled, dim=1, descending=True, stable=True)
    bits = (scaled + 0.0).contiguous().numpy().view(np.int32).astype(np.int64)  # -0.0 -> 0.0
    order = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # increases with the float's value
    keys = ((-order) << 32) | np.arange(scaled.shape[1], dtype=np.int64)[None, :]
    keys.sort(axis=1)
    ids = torch.from_numpy(keys & 0xFFFFFFFF)
    return scaled.gather(1, ids), ids


def _sort_path(
    scaled: torch.Tensor, lse: torch.Tensor, top_p: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nucleus from a full canonical sort (equal values keep ascending id order)."""
    values, ids = canonical_sort(scaled)
    cumulative, size = _prefix(values, lse, top_p)
    return ids, cumulative, size


def nucleus(
    logits: torch.Tensor, top_p: float, temperature: float = 1.0, top_k_cut: int = TOP_K_CUT
) -> Nucleus:
    """The nucleus of each row of ``logits`` (shape ``(B, V)``, any float dtype), as defined above.

    ``top_k_cut`` is the first pre-cut tried; it changes the speed, never the result. Non-finite
    log-normalisers (NaN or ``+inf`` logits, or a row of ``-inf``) and bad arguments raise
    :class:`InputError`.
    """
    _check_args(logits, top_p, temperature, top_k_cut)
    scaled = logits.float()
    if temperature != 1.0:
        scaled = scaled / temperature
    lse = torch.logsumexp(scaled, dim=1)
    if not bool(torch.isfinite(lse).all()):
        raise InputError("logits: a row has NaN or +inf logits, or only -inf (a broken model?)")
    lse = lse.double()
    n_rows, vocab = scaled.shape
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    pending = torch.arange(n_rows, device=scaled.device)
    # k tokens hold at most k * p_max: a row whose bound stays below top_p skips that pre-cut
    # (flat rows go straight to the sort). Speed only: every path gives the same nucleus.
    p_max = torch.exp(scaled.max(dim=1).values.double() - lse)
    k = top_k_cut
    while top_p < 1.0 and pending.numel() and k <= vocab // 8:
        hopeful = k * p_max[pending] >= top_p
        trying = pending[hopeful]
        if trying.numel():
            rows = _take(scaled, trying), _take(lse, trying)
            ids, cumulative, size, exact = _topk_path(*rows, top_p, k)
            parts.append((trying[exact], ids[exact], cumulative[exact], size[exact]))
            pending = torch.cat([pending[~hopeful], trying[~exact]]).sort().values
        k = 4 * k
    if pending.numel():
        parts.append((pending, *_sort_path(_take(scaled, pending), _take(lse, pending), top_p)))
    return _assemble(parts, n_rows, scaled.device)


def _take(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x[rows]``, without the copy when ``rows`` is every row in order."""
    return x if rows.numel() == x.shape[0] else x[rows]


def _assemble(
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    n_rows: int,
    device: torch.device,
) -> Nucleus:
    """Stack the rows of the paths into one :class:`Nucleus`, cut to the longest nucleus."""
    width = max(int(size.max()) for rows, _, _, size in parts if rows.numel())
    ids = torch.zeros((n_rows, width), dtype=torch.long, device=device)
    cumulative = torch.full((n_rows, width), float("inf"), dtype=torch.float64, device=device)
    size = torch.zeros(n_rows, dtype=torch.long, device=device)
    for rows, part_ids, part_cum, part_size in parts:
        if rows.numel():
            w = min(width, part_ids.shape[1])
            ids[rows, :w] = part_ids[:, :w]
            cumulative[rows, :w] = part_cum[:, :w]
            size[rows] = part_size
    return Nucleus(ids=ids, cumulative=cumulative, size=size)


def draw(nuc: Nucleus, step_keys: np.ndarray) -> torch.Tensor:
    """One token per row by an exponential race over the nucleus, shape ``(B,)`` long.

    ``step_keys`` (``uint64``, shape ``(B,)``; see :func:`step_keys`) give every token id of a row
    its variate ``E_i`` (:func:`token_exponentials`); the row draws the nucleus token with the
    smallest ``E_i / p_i``. Tokens past the nucleus (and any whose probability underflows to 0)
    never win.
    """
    ids, size = nuc.ids.cpu().numpy(), nuc.size.cpu().numpy()
    # Variates only for the nucleus entries: rows are padded to the longest nucleus of the batch,
    # and one flat row would otherwise cost every row its width in hashes.
    inside = np.arange(ids.shape[1])[None, :] < size[:, None]
    keys = np.repeat(np.asarray(step_keys, dtype=np.uint64), size)
    exponentials = np.full(ids.shape, np.inf)
    exponentials[inside] = token_exponentials(keys, ids[inside][:, None])[:, 0]
    race = torch.from_numpy(exponentials).to(nuc.cumulative.device) / nuc.probabilities()
    index = race.nan_to_num(nan=float("inf")).argmin(dim=1)
    return nuc.ids.gather(1, index[:, None]).squeeze(1)


def sample_nucleus(
    logits: torch.Tensor,
    step_keys: np.ndarray,
    top_p: float,
    temperature: float = 1.0,
    top_k_cut: int = TOP_K_CUT,
) -> torch.Tensor:
    """Nucleus-sample one token id per row of ``logits`` (``(B, V)``) with ``step_keys`` (``(B,)``)."""
    return draw(nucleus(logits, top_p, temperature, top_k_cut), step_keys)


# --------------------------------------------------------------------------
# Counter-based uniforms
# --------------------------------------------------------------------------


def row_key(seed: int, prompt_id: str, sample: int) -> int:
    """The 64-bit random key of one continuation.

    The little-endian 8-byte BLAKE2b digest of the JSON text ``[seed, "prompt_id", sample]``
    (JSON quoting keeps ``("a1", 0)`` and ``("a", 10)`` apart).
    """
    text = json.dumps([int(seed), str(prompt_id), int(sample)])
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a ``uint64`` array (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def step_keys(keys: np.ndarray, step: int) -> np.ndarray:
    """The key of each row key at decode step ``step`` (0-based), ``uint64``.

    It is output ``step`` of the SplitMix64 stream whose state starts at the row key:
    ``mix64(key + (step + 1) * 0x9E3779B97F4A7C15 mod 2^64)``.
    """
    if step < 0:
        raise InputError(f"step must be >= 0, got {step}")
    offset = np.uint64(((step + 1) * _GOLDEN) & _MASK64)
    return mix64(np.asarray(keys, dtype=np.uint64) + offset)


def token_exponentials(step_keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The exponential variate of each token id in ``ids`` (shape ``(B, W)``) under its row's step key.

    For step key ``k`` and token id ``i`` it is ``-log u`` with ``u = (b + 1/2) * 2^-53`` and ``b``
    the top 53 bits of ``mix64(k + (i + 1) * 0x9E3779B97F4A7C15 mod 2^64)`` (output ``i`` of the
    SplitMix64 stream started at ``k``), so ``0 < u < 1``; float64, shape ``(B, W)``.
    """
    keys = np.asarray(step_keys, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        counters = (np.asarray(ids).astype(np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
    bits = mix64(keys + counters) >> np.uint64(11)
    return -np.log((bits.astype(np.float64) + 0.5) * 2.0**-53)
