"""Random unstructured pruning: the control every pruning claim needs.

The same share of weights as magnitude pruning, at positions drawn uniformly
without replacement over all attention and MLP matrices (seeded), so that an
effect of magnitude pruning can be told apart from an effect of removing that
many weights at all.
"""

from __future__ import annotations

import hashlib
from typing import Any

from compfair.compression import Context, register_method
from compfair.compression.methods.magnitude import _ScoredPruning


@register_method("random")
class RandomPruning(_ScoredPruning):
    paper = "the control of every pruning claim"
    summary = "unstructured pruning of uniformly random positions (seeded control)"
    scope = "global"
    degradation_power = 1.0  # the pruned share of squared weight grows as the share pruned

    def score(self, name: str, weight: Any, context: Context) -> Any:
        import torch

        # One stream per matrix, keyed by (seed, name): the mask does not
        # depend on the order in which matrices are visited.
        key = hashlib.sha256(f"{context.seed}:{name}".encode()).hexdigest()
        generator = torch.Generator().manual_seed(int(key[:15], 16))
        return torch.rand(weight.shape, generator=generator, dtype=torch.float32).to(weight.device)
