"""Magnitude pruning (Han et al. 2015): zero the smallest ``|w|``.

``magnitude`` ranks all attention and MLP matrices together (global
unstructured pruning, as in Xu & Hu 2022); ``layerwise_magnitude`` ranks each
matrix alone, so every matrix has the requested sparsity (within one weight).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compfair.compression import CompressionMethod, Context, register_method

#: The options every unstructured pruning method takes.
SPARSITY_OPTIONS = {
    "properties": {
        "tolerance": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 0.005,
            "description": "Largest allowed gap between requested and measured sparsity.",
        }
    }
}


class _ScoredPruning(CompressionMethod):
    """Unstructured pruning by a per-weight score in one scope (``global`` or ``matrix``)."""

    family = "pruning"
    level_kind = "fraction"
    options_schema = SPARSITY_OPTIONS
    scope = "global"

    def score(self, name: str, weight: Any, context: Context) -> Any:
        return weight.abs()

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.sparsity import prune_by_scores

        return prune_by_scores(
            model, float(level), lambda n, w: self.score(n, w, context), self.scope
        )

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.compression.sparsity import check_sparsity

        return check_sparsity(model, float(level), float(options["tolerance"]), self.scope)


@register_method("magnitude")
class GlobalMagnitude(_ScoredPruning):
    paper = "Han et al. 2015; the method of Xu & Hu 2022"
    summary = "global unstructured magnitude pruning of all attention and MLP matrices"
    scope = "global"


@register_method("layerwise_magnitude")
class LayerwiseMagnitude(_ScoredPruning):
    paper = "Han et al. 2015 (per matrix, as in Wanda's magnitude baseline)"
    summary = "unstructured magnitude pruning at the same sparsity inside every matrix"
    scope = "matrix"
