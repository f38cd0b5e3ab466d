"""Gaussian weight noise relative to each matrix's RMS: a generic loss of quality.

Not a compression method anyone deploys: the degradation a quality-matched
control is made of (:mod:`compfair.compression.controls`). At level ``s``
every attention and MLP matrix ``W`` (the matrices every method compresses,
:func:`compfair.models.prunable_weights`) becomes ``W + s * rms(W) * Z`` with
``Z`` standard normal rescaled to an RMS of exactly 1 (so the added noise's
RMS is exactly the level times the matrix's, whatever its size), drawn from one
stream per matrix keyed by (seed, matrix name): the noise does not depend on
the order matrices are visited, and a larger level scales the same draw (the
perplexity then grows with the level). The draw is made in float64 on the CPU
and added in the weight's dtype. A matrix of zeros stays zero. Embeddings,
norms, biases and the LM head are left as they are. Levels are shares in
(0, 1): at 1 x RMS the noise is as large as the matrix and the model is
destroyed (on SmolLM2, 0.10 x RMS already multiplies the held-out perplexity by
about 1.6 and 0.20 x RMS by about 10), so search bounds like [0.005, 0.5] cover
every useful control.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from compfair.compression import CompressionMethod, Context, register_method

#: Largest relative gap allowed between the requested and the measured noise scale (the
#: noise is rescaled to the level exactly; this leaves room for the weights' rounding).
TOLERANCE = 0.01


def _generator(seed: int, name: str) -> Any:
    import torch

    # Keyed like random pruning's masks, plus "noise": the same seed must not make the
    # noise a function of the uniform draws that choose random pruning's positions.
    key = hashlib.sha256(f"{seed}:noise:{name}".encode()).hexdigest()
    return torch.Generator().manual_seed(int(key[:15], 16))


def _rms(x: Any) -> float:
    return float(x.double().pow(2).mean().sqrt())


@register_method("noise")
class WeightNoise(CompressionMethod):
    family = "degradation"
    level_kind = "fraction"
    paper = "the generic degradation of quality-matched controls"
    summary = "Gaussian noise of level x each matrix's RMS added to every attention and MLP matrix"

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        """Add the noise in place; report the measured ``rms(W' - W) / rms(W)`` per matrix
        (None for an all-zero matrix), its mean, and each noisy matrix's sum of squares."""
        import torch

        from compfair.models import prunable_weights

        measured, sums = {}, {}
        for name, weight in prunable_weights(model):
            original = weight.detach().clone()
            rms = _rms(original)
            draw = torch.randn(
                weight.shape, generator=_generator(context.seed, name), dtype=torch.float64
            )
            scale = float(level) * rms / max(_rms(draw), 1e-30)
            weight.data.add_((draw * scale).to(weight.device, weight.dtype))
            measured[name] = _rms(weight.detach() - original) / rms if rms > 0 else None
            sums[name] = float(weight.detach().double().pow(2).sum())
        values = [v for v in measured.values() if v is not None]
        return {
            "relative_noise": measured,
            "mean_relative_noise": sum(values) / max(len(values), 1),
            "sum_of_squares": sums,
        }

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        """The noise measured at ``apply`` is the level (within :data:`TOLERANCE`) in every
        matrix, and every reloaded matrix has the sum of squares it had when saved (1e-5)."""
        from compfair.models import prunable_weights

        level = float(level)
        off = {
            n: r
            for n, r in report["relative_noise"].items()
            if r is not None and abs(r / level - 1) > TOLERANCE
        }
        if off:
            raise RuntimeError(f"noise scale off the level {level} in {sorted(off)[:3]}: {off}")
        found = dict(prunable_weights(model))
        if set(found) != set(report["sum_of_squares"]):
            raise RuntimeError("the reloaded model's matrices are not the ones made noisy")
        for name, expected in report["sum_of_squares"].items():
            got = float(found[name].detach().double().pow(2).sum())
            if abs(got - expected) > 1e-5 * max(abs(expected), 1e-30):
                raise RuntimeError(f"{name}: reloaded sum of squares {got} != saved {expected}")
        return {"verified_matrices": len(found)}
