"""Depth pruning: whole decoder layers removed (ShortGPT, Men et al. 2024; Gromov et al. 2024).

The level is the share of decoder layers removed: ``round(share * n)`` of
the parent's ``n`` layers go, chosen on the calibration data from how little a
layer changes the hidden state it is given:

- ``selection: individual`` (default, ShortGPT): each layer's Block Influence
  ``1 - cos(h_in, h_out)`` averaged over all calibration tokens; the layers of
  lowest influence are removed, wherever they are;
- ``selection: contiguous`` (Gromov et al.): the run of consecutive layers
  whose input and output are closest in mean angular distance
  ``arccos(cos) / pi`` is removed (Gromov et al. use the last token; here
  every token counts).

The first and the last layer are kept unless ``keep_first`` / ``keep_last``
are false: both works measure them as among the most important, and a small
calibration set should not be able to remove them by chance.

The kept layers form a new, shallower model
(:func:`compfair.architecture.keep_blocks`), which :meth:`DepthPruning.apply`
leaves in ``context.extra["model"]`` for the driver to save in place of the
model it was given. Verification checks the reloaded model's layer count and
that each of its layers is, bit for bit, the parent layer it was kept from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compfair.compression import CompressionMethod, Context, register_method

OPTIONS = {
    "properties": {
        "selection": {
            "enum": ["individual", "contiguous"],
            "default": "individual",
            "description": "individual: lowest Block Influence (ShortGPT); contiguous: the "
            "run of layers with the smallest angular distance (Gromov et al.).",
        },
        "keep_first": {
            "type": "boolean",
            "default": True,
            "description": "Never remove the first decoder layer.",
        },
        "keep_last": {
            "type": "boolean",
            "default": True,
            "description": "Never remove the last decoder layer.",
        },
    }
}


@register_method("depth")
class DepthPruning(CompressionMethod):
    paper = "ShortGPT (Men et al. 2024); Gromov et al. 2024"
    family = "pruning"
    level_kind = "fraction"
    needs_calibration = True
    options_schema = OPTIONS
    summary = "whole decoder layers of least influence on the hidden states removed"

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.structured import prune_depth
        from compfair.models import decoder_blocks

        opts = {**self.defaults(), **options}
        n_blocks = len(decoder_blocks(model))
        protected = {0} if opts["keep_first"] else set()
        if opts["keep_last"]:
            protected.add(n_blocks - 1)
        new, report = prune_depth(
            model, float(level), context.calibration, opts["selection"], protected
        )
        context.extra["model"] = new  # a new object: the driver saves it instead of ``model``
        return {"requested": float(level), **report}

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.compression.structured import check_depth

        return check_depth(model, float(level), report)
