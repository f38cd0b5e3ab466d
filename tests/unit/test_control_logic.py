"""The logic of quality-matched controls on real models (issue 17).

``test_controls.py`` checks the excess table on simulated numbers; here every
number comes from a tiny GPT-2 trained for a few seconds on a seeded
first-order Markov chain, degraded for real (:mod:`compfair.compression`),
matched by the real strength search
(:func:`compfair.compression.controls.search_control`), sampled for real
(:func:`compfair.generate.sample_continuations`) and compared by
:func:`compfair.tables.controls.matched_controls_table`. "Toxicity" is the share of
a continuation's tokens in a fixed word list of ordinary-frequency tokens.

- A model that is itself weight noise (one seed), matched to weight-noise
  controls (other seeds): each control reaches the model's perplexity ratio,
  and over repetitions the excess is centred on 0. One control's prompt-level
  interval covers 0 far less often than its nominal 95 %: each noise draw has
  its own toxicity, which an interval over prompts cannot see. Pooled over
  three draws (:func:`compfair.tables.controls.pool_draws`, ``controls.draws``), the
  interval includes the variation between draws and covers 0 in most
  repetitions.
- A plug-in method that raises the word list's logits (and adds some noise):
  its excess over its control is detected.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2LMHeadModel

from compfair.compression import (
    METHODS,
    CompressionMethod,
    Context,
    get_method,
    register_method,
)
from compfair.compression.controls import search_control
from compfair.generate import Sampling, sample_continuations
from compfair.metrics import Bootstrap, bootstrap_ci
from compfair.perplexity import perplexity
from compfair.tables.controls import matched_controls_table
from compfair.training import lm_loss
from compfair.variants import control_name
from tests.support import make_tiny_gpt2

VOCAB = 100
#: Held-out evaluation of every perplexity (as the workflow's ``evaluation`` config).
EVALUATION = {"seq_len": 32, "max_tokens": None, "batch_size": 64}
TOLERANCE = 0.05
#: Noise levels are x each matrix's RMS; on this model 1.2 gives a ratio of about 1.7.
BOUNDS = [0.1, 4.0]
MODEL_LEVEL = 1.2
N_PROMPTS, SAMPLES, NEW_TOKENS = 80, 2, 10
SAMPLING = Sampling(top_p=0.9, temperature=1.0, max_new_tokens=NEW_TOKENS)
#: No stop token: the model's EOS is switched off, so every continuation has NEW_TOKENS.
TOKENIZER = types.SimpleNamespace(pad_token_id=0, eos_token_id=None)
REPETITIONS = 20
DRAWS = 3  # control draws per repetition, pooled by compfair.tables.controls.pool_draws
SHIFT_METHOD = "test-word-list-shift"


# --------------------------------------------------------------------------- helpers


def _transitions(seed: int = 0, successors: int = 4) -> np.ndarray:
    """A Markov chain over the vocabulary: each token has a few likely successors."""
    rng = np.random.default_rng(seed)
    matrix = np.full((VOCAB, VOCAB), 0.02 / VOCAB)
    for token in range(VOCAB):
        chosen = rng.choice(VOCAB, successors, replace=False)
        matrix[token, chosen] += 0.98 * rng.dirichlet(np.ones(successors))
    return matrix / matrix.sum(axis=1, keepdims=True)


TRANSITIONS = _transitions()


def _chain(n: int, seed: int) -> torch.Tensor:
    """``n`` tokens of the chain, starting from a uniform token."""
    rng = np.random.default_rng(seed)
    cumulative = TRANSITIONS.cumsum(axis=1)
    tokens = [int(rng.integers(VOCAB))]
    for u in rng.random(n - 1):
        tokens.append(min(int(np.searchsorted(cumulative[tokens[-1]], u)), VOCAB - 1))
    return torch.tensor(tokens)


def _word_list(size: int = 10) -> list[int]:
    """The "toxic" words: the tokens ranked around the median of the chain's stationary
    distribution (ordinary-frequency tokens, about 8 % of the stream together)."""
    stationary = np.full(VOCAB, 1.0 / VOCAB)
    for _ in range(500):
        stationary = stationary @ TRANSITIONS
    middle = VOCAB // 2
    return sorted(np.argsort(stationary)[middle - size // 2 : middle + size // 2].tolist())


WORDS = _word_list()


def _train(steps: int = 200, batch: int = 16, window: int = 33) -> GPT2LMHeadModel:
    """The tiny GPT-2 trained with AdamW on the chain (held-out perplexity about 4.4, the
    chain's own 3.5, a random model's about 100); EOS switched off for sampling."""
    model = make_tiny_gpt2(VOCAB, n_layer=4, seed=0)
    stream = _chain(60_000, seed=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(stream) - window, (batch,), generator=generator)
        loss, _ = lm_loss(model, torch.stack([stream[s : s + window] for s in starts]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.generation_config.eos_token_id = None
    return model


def _ppl(model: Any, tokens: torch.Tensor) -> float:
    return perplexity(
        model, tokens, EVALUATION["seq_len"], EVALUATION["max_tokens"], EVALUATION["batch_size"]
    )


def _degraded(parent: Any, method: str, level: float, seed: int, **options: Any) -> Any:
    """A copy of ``parent`` compressed by ``method`` (defaults updated by ``options``)."""
    model = copy.deepcopy(parent)
    instance = get_method(method)
    with torch.no_grad():
        instance.apply(model, level, {**instance.defaults(), **options}, Context(seed=seed))
    return model


def _prompts(n: int = N_PROMPTS, length: int = 4, seed: int = 3) -> list[list[int]]:
    stream = _chain(n * length, seed).tolist()
    return [stream[i * length : (i + 1) * length] for i in range(n)]


def _prompt_ids(n: int) -> list[str]:
    return [f"p{i:03d}" for i in range(n)]


def _continuations(model: Any, prompts: Sequence[list[int]], seed: int) -> list[list[list[int]]]:
    ids = _prompt_ids(len(prompts))
    out = sample_continuations(
        model, TOKENIZER, [""] * len(prompts), ids, SAMPLES, seed, SAMPLING, 256, encoded=prompts
    )
    assert all(len(c) == NEW_TOKENS for per_prompt in out for c in per_prompt)
    return out


def _per_prompt(continuations: Sequence[Sequence[list[int]]]) -> pd.DataFrame:
    """The aggregation's per-prompt frame; a continuation's toxicity is its share of words."""
    words = set(WORDS)
    toxicity = np.array(
        [[sum(t in words for t in c) / len(c) for c in per_prompt] for per_prompt in continuations]
    )
    n = len(continuations)
    return pd.DataFrame(
        {
            "prompt_id": _prompt_ids(n),
            "domain": [None] * n,
            "group": [None] * n,
            "n_samples": toxicity.shape[1],
            "max_toxicity": toxicity.max(axis=1),
            "toxic": (toxicity.max(axis=1) >= 0.5).astype(float),
            "mean_toxicity": toxicity.mean(axis=1),
        }
    )


def _excess(
    model: pd.DataFrame, controls: Sequence[pd.DataFrame], ppl: Mapping[str, float], seed: int
) -> pd.DataFrame:
    """The matched-controls table of ``model`` against its ``controls`` (draws of one noise
    control, named as the workflow names them; parent ``teacher``)."""
    names = [control_name("noise", "m", d) for d in range(1, len(controls) + 1)]
    variants = [
        {"model": "teacher", "family": "finetuned", "method": "f", "level": None, "parent": None},
        {"model": "m", "family": "quantization", "method": "x", "level": "1", "parent": "teacher"},
        *(
            {
                "model": name,
                "family": "control",
                "method": "noise",
                "level": None,
                "parent": "teacher",
                "matches": "m",
            }
            for name in names
        ),
    ]
    per_prompt = {
        (1, "m", "rtp"): model,
        **{(1, n, "rtp"): c for n, c in zip(names, controls, strict=True)},
    }
    evals = {(1, name): {"perplexity": value} for name, value in ppl.items()}
    boot = Bootstrap(n_resamples=1000, seed=seed)
    return matched_controls_table(per_prompt, {}, variants, evals, boot).set_index("metric")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread for the module: these tiny matrices gain nothing from two, and on a
    busy two-core machine two spinning threads make the module about ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def parent() -> GPT2LMHeadModel:
    """The trained tiny model, trained once for the module."""
    torch.manual_seed(0)
    return _train()


@pytest.fixture(scope="module")
def heldout() -> torch.Tensor:
    return _chain(4096, seed=2)


@pytest.fixture(scope="module")
def base(parent: GPT2LMHeadModel, heldout: torch.Tensor) -> float:
    """The parent's held-out perplexity, measured before any search."""
    return _ppl(parent, heldout)


@dataclass(frozen=True)
class Repetition:
    """One noise "model" (seed A) against DRAWS matched noise controls (other seeds)."""

    ratio: float  # the model's held-out perplexity ratio to the parent
    found_ratios: list[float]  # the search's ratio at the strength found, per draw
    control_ratios: list[float]  # each control's, measured again on the control rebuilt
    rows: pd.DataFrame  # the excess table's expected_max_toxicity rows: per draw, then pooled


@pytest.fixture(scope="module")
def repetitions(parent: GPT2LMHeadModel, heldout: torch.Tensor, base: float) -> list[Repetition]:
    """REPETITIONS seeded (model, DRAWS controls), each generated on the same prompts with the
    same random numbers (generation seed r for all)."""
    prompts, out = _prompts(), []
    for r in range(REPETITIONS):
        model = _degraded(parent, "noise", MODEL_LEVEL, seed=100 + r)
        ratio = _ppl(model, heldout) / base
        controls, found_ratios, ppl = [], [], {"teacher": base, "m": ratio * base}
        for d in range(1, DRAWS + 1):
            seed = 1000 * d + r
            search = {"seed": seed, "tolerance": TOLERANCE, "max_tries": 12, "bounds": BOUNDS}
            found, parent_ppl = search_control(parent, "noise", ratio, heldout, EVALUATION, search)
            assert parent_ppl == pytest.approx(base, rel=1e-9)
            control = _degraded(parent, "noise", found.strength, seed=seed)
            ppl[control_name("noise", "m", d)] = _ppl(control, heldout)
            controls.append(_per_prompt(_continuations(control, prompts, seed=r)))
            found_ratios.append(found.ratio)
        table = _excess(_per_prompt(_continuations(model, prompts, seed=r)), controls, ppl, r)
        rows = table.loc[["expected_max_toxicity"]].reset_index().set_index("control")
        control_ratios = [ppl[control_name("noise", "m", d)] / base for d in range(1, DRAWS + 1)]
        out.append(Repetition(ratio, found_ratios, control_ratios, rows))
    return out


# --------------------------------------------------------------------------- no excess


def test_the_control_reaches_the_models_perplexity_ratio(
    repetitions: list[Repetition], parent: GPT2LMHeadModel, heldout: torch.Tensor, base: float
) -> None:
    """The search finds a noise strength (another seed) whose ratio is the model's within the
    tolerance, measured again on the rebuilt control; the table carries both ratios; the
    parent keeps its weights through every search."""
    ratios = np.array([r.ratio for r in repetitions])
    assert 1.3 < ratios.min() and ratios.max() < 3.0  # clear but moderate degradation
    for rep in repetitions:
        for d, (found, measured) in enumerate(
            zip(rep.found_ratios, rep.control_ratios, strict=True), 1
        ):
            assert abs(measured / rep.ratio - 1) <= TOLERANCE
            assert measured == pytest.approx(found, rel=1e-6)
            row = rep.rows.loc[control_name("noise", "m", d)]
            assert row["perplexity_ratio"] == pytest.approx(rep.ratio)
            assert row["control_perplexity_ratio"] == pytest.approx(measured)
            assert row["n_units"] == N_PROMPTS and row["draws"] == 1
    assert _ppl(parent, heldout) == base


def test_two_noise_draws_at_equal_perplexity_show_no_systematic_excess(
    repetitions: list[Repetition],
) -> None:
    """Over the repetitions (the unit is a pair of noise draws, not a prompt) the excess is
    centred on 0: the 99 % bootstrap interval of its mean covers 0 (99 %: the test's own
    false-alarm rate is 1 %, with fixed seeds and a search whose order of tries may change)."""
    diffs = np.array([r.rows.loc[control_name("noise", "m", 1), "diff"] for r in repetitions])
    low, high = bootstrap_ci(diffs, np.mean, n_resamples=4000, confidence=0.99, seed=0)
    assert low <= 0.0 <= high


def test_a_degradation_matched_to_its_own_kind_has_an_interval_covering_0(
    repetitions: list[Repetition],
) -> None:
    """Pooled over DRAWS control draws, the excess's interval (95 % nominal) covers 0 in at
    least 85 % of the repetitions (19 of 20 when written); one draw's prompt-level interval
    does not (8 of 20; it holds both models fixed, and each noise draw has its own word-list
    rate: 163 of 260 seeded pairs, 63 %, in a longer run), and is narrower."""
    pooled_name = f"{control_name('noise', 'm')} ({DRAWS} draws)"
    pooled = [r.rows.loc[pooled_name] for r in repetitions]
    single = [r.rows.loc[control_name("noise", "m", 1)] for r in repetitions]
    assert all(row["draws"] == DRAWS for row in pooled)
    for rep, row in zip(repetitions, pooled, strict=True):
        per_draw = rep.rows[rep.rows["draws"] == 1]
        assert row["diff"] == pytest.approx(per_draw["diff"].mean())
    covered = sum(row["ci_low"] <= 0.0 <= row["ci_high"] for row in pooled)
    covered_single = sum(row["ci_low"] <= 0.0 <= row["ci_high"] for row in single)
    assert covered >= 0.85 * REPETITIONS, (covered, covered_single)  # 19 of 20 when written
    assert covered_single < covered
    width = np.median([row["ci_high"] - row["ci_low"] for row in pooled])
    assert width > np.median([row["ci_high"] - row["ci_low"] for row in single])


# --------------------------------------------------------------------------- detected


class WordListShift(CompressionMethod):
    """A "method" that changes toxicity on purpose: weight noise at ``level`` plus a bias of
    ``shift`` nats on the output logits of ``token_ids`` (the LM head is tied to the input
    embeddings, so a new bias touches only the output)."""

    family = "quantization"  # any family of a method under study (not the controls')
    level_kind = "fraction"
    summary = "weight noise plus a logit bias on a word list (a test plug-in)"
    options_schema = {
        "properties": {
            "token_ids": {"type": "array", "default": WORDS},
            "shift": {"type": "number", "default": 1.5},
        }
    }

    def apply(
        self, model: Any, level: Any, options: Mapping[str, Any], context: Context
    ) -> dict[str, Any]:
        noise = get_method("noise")
        report = noise.apply(model, level, noise.defaults(), context)
        head = model.get_output_embeddings()
        bias = torch.zeros(head.out_features, dtype=head.weight.dtype)
        bias[list(options["token_ids"])] = float(options["shift"])
        head.bias = torch.nn.Parameter(bias, requires_grad=False)
        return {"mean_relative_noise": report["mean_relative_noise"], "shift": options["shift"]}

    def verify(
        self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping[str, Any]
    ) -> dict[str, Any]:
        bias = model.get_output_embeddings().bias
        expected = torch.zeros_like(bias)
        expected[list(options["token_ids"])] = float(options["shift"])
        if not torch.equal(bias, expected):
            raise RuntimeError("the output bias is not the word list's shift")
        return {"shifted_tokens": int((bias != 0).sum())}


@pytest.fixture
def word_list_shift() -> Iterator[str]:
    """:class:`WordListShift` registered for one test, then removed from the registry."""
    register_method(SHIFT_METHOD)(WordListShift)
    try:
        yield SHIFT_METHOD
    finally:
        METHODS.pop(SHIFT_METHOD, None)


def test_a_method_that_raises_toxicity_is_detected_against_its_control(
    word_list_shift: str, parent: GPT2LMHeadModel, heldout: torch.Tensor, base: float
) -> None:
    """The plug-in's model against a noise control matched to its perplexity ratio: the excess
    of expected maximum toxicity is positive (interval above 0, p < 0.05) and is the model's
    mean over prompts minus the control's."""
    method = get_method(word_list_shift)
    model = _degraded(parent, word_list_shift, 0.8, seed=7)
    assert method.verify(model, 0.8, method.defaults(), {}) == {"shifted_tokens": len(WORDS)}
    model_ppl = _ppl(model, heldout)
    ratio = model_ppl / base
    search = {"seed": 11, "tolerance": TOLERANCE, "max_tries": 12, "bounds": BOUNDS}
    found, _ = search_control(parent, "noise", ratio, heldout, EVALUATION, search)
    control = _degraded(parent, "noise", found.strength, seed=11)
    control_ppl = _ppl(control, heldout)
    assert abs(control_ppl / base / ratio - 1) <= TOLERANCE

    prompts = _prompts()
    mine = _per_prompt(_continuations(model, prompts, seed=0))
    theirs = _per_prompt(_continuations(control, prompts, seed=0))
    ppl = {"teacher": base, "m": model_ppl, "noise-match-m": control_ppl}
    table = _excess(mine, [theirs], ppl, seed=0)
    row = table.loc["expected_max_toxicity"]
    assert row["diff"] == pytest.approx(mine["max_toxicity"].mean() - theirs["max_toxicity"].mean())
    assert row["value"] == pytest.approx(mine["max_toxicity"].mean())
    assert row["ci_low"] > 0 and row["p_value"] < 0.05
    mean_row = table.loc["mean_toxicity"]
    assert mean_row["ci_low"] > 0 and mean_row["p_value"] < 0.05
