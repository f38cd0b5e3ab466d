"""Structured pruning of attention heads (Michel et al. 2019, "Are Sixteen Heads Really Better than One?").

The level is the share of heads removed *in every layer*: ``round(share *
heads)`` heads per layer, the same count everywhere, so that no layer loses
its attention altogether (a level that removes no head or all of them is
refused). Within a layer the lowest-scored heads go:

- ``heads``: no data; a head's score is ``||W_o[:, head]||_F * ||W_v[head's
  value rows]||_F``, the norms of the weights through which its values reach
  the residual stream;
- ``heads_act``: on the calibration data; a head's score is the mean L2 norm
  of its contribution ``W_o[:, head] @ o_head`` to the residual stream, a
  token (Michel et al. score heads by the gradient of the loss with respect to
  a head mask; these are the cheaper magnitude proxies).

Removing a head zeroes its query rows and its output-projection columns (and
the query bias), so it adds exactly nothing. With grouped-query attention only
query heads are counted and ranked; a key/value head's rows are zeroed too
once all the query heads that read it are gone. Verification re-derives the
removed heads from the reloaded model's zeros: their number per layer must be
``round(share * heads)`` and they must be the reported ``(layer, head)`` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compfair.compression import CompressionMethod, Context, register_method


@register_method("heads")
class HeadPruning(CompressionMethod):
    paper = "Michel et al. 2019"
    family = "pruning"
    level_kind = "fraction"
    importance = "weight_norm"
    summary = "attention heads with the smallest value/output weight norms zeroed in every layer"

    def scores(self, model: Any, context: Context) -> list:
        from compfair.compression.structured import head_maps, head_weight_scores

        return [head_weight_scores(info) for info in head_maps(model)]

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.structured import remove_heads

        report = remove_heads(model, float(level), self.scores(model, context))
        return {"requested": float(level), "importance": self.importance, **report}

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.compression.structured import check_heads

        return check_heads(model, float(level), report)


@register_method("heads_act")
class ActivationHeadPruning(HeadPruning):
    paper = "Michel et al. 2019 (activation proxy of their importance)"
    needs_calibration = True
    importance = "activation"
    summary = "attention heads with the smallest mean contribution on calibration data zeroed"

    def scores(self, model: Any, context: Context) -> list:
        from compfair.compression.structured import head_activation_scores

        return head_activation_scores(model, context.calibration)
