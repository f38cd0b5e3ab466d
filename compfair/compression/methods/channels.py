"""Structured pruning of MLP channels (width pruning, as in LLM-Pruner's channel groups and FLAP).

The level is the share of intermediate channels removed *in every layer*
(``round(share * channels)`` per layer). Within a layer the lowest-scored
channels go:

- ``channels``: no data; ``||input rows of c||_2 * ||W_down[:, c]||_2``, the
  norm of the channel's up (and gate) rows together times that of its
  output-matrix column;
- ``channels_act``: on the calibration data; ``mean |a_c| * ||W_down[:,
  c]||_2``, the mean norm of what the channel adds to the residual stream
  (``a_c`` the activation the output matrix reads), as in Wanda's structured
  variant (Sun et al. 2024).

Removing a channel zeroes its rows in every input matrix (up, gate, fc1,
c_fc, ..., with biases) and its column of the output matrix (down, fc2,
c_proj), so it contributes exactly nothing; the output matrix's bias stays.
Verification re-derives the removed channels from the reloaded model's zeros.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compfair.compression import CompressionMethod, Context, register_method


@register_method("channels")
class ChannelPruning(CompressionMethod):
    paper = "structured width pruning; importance as in LLM-Pruner (Ma et al. 2023)"
    family = "pruning"
    level_kind = "fraction"
    importance = "weight_norm"
    summary = "MLP channels with the smallest input-row x output-column norms zeroed in every layer"

    def scores(self, model: Any, context: Context) -> list:
        from compfair.compression.structured import channel_maps, channel_weight_scores

        return [channel_weight_scores(info) for info in channel_maps(model)]

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.structured import remove_channels

        report = remove_channels(model, float(level), self.scores(model, context))
        return {"requested": float(level), "importance": self.importance, **report}

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.compression.structured import check_channels

        return check_channels(model, float(level), report)


@register_method("channels_act")
class ActivationChannelPruning(ChannelPruning):
    paper = "activation importance as in FLAP (An et al. 2024) and Wanda's structured variant"
    needs_calibration = True
    importance = "activation"
    summary = "MLP channels with the smallest mean contribution on calibration data zeroed"

    def scores(self, model: Any, context: Context) -> list:
        from compfair.compression.structured import channel_activation_scores

        return channel_activation_scores(model, context.calibration)
