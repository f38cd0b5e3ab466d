"""Round-to-nearest (RTN) weight-only quantization: the baseline of GPTQ and AWQ.

``rtn`` rounds every attention and MLP matrix of the decoder blocks onto a
``b``-bit uniform grid (levels: bits, 2 to 8), one grid per group of
``group_size`` consecutive input columns of each output row of the ``[out,
in]`` view (``group_size: null``: one grid per output row). The grids are
GPTQ's, from the same functions (:func:`compfair.compression.quantize.fit_grid`),
so that ``rtn-b`` and ``gptq-b`` with the same options differ only in GPTQ's
error compensation: asymmetric (the default) over ``[min(w, 0), max(w, 0)]``
with an integer zero point; symmetric (``sym: true``) with ``scale = 2 max|w|
/ (2^b - 1)`` and zero point ``2^(b-1)``, i.e. ``2^b`` levels ``-2^(b-1) ..
2^(b-1) - 1`` steps with 0 on the grid; see :mod:`compfair.compression.quantize`
for the details. Embeddings, norms, biases and the LM head stay in full precision,
as in GPTQ's and AWQ's RTN baselines (Frantar et al. 2023; Lin et al. 2024).

The weights are stored *dequantized* in fp32: the folder loads with plain
transformers and generation runs on exactly the values the quantized model
computes with. The report gives each matrix's relative Frobenius and largest
absolute error; verification checks, on the reloaded model, that every group
holds at most ``2^b`` values on its grid and that the weights are the ones
checked at quantization time to lie within half a step of the originals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compfair.compression import CompressionMethod, Context, register_method

OPTIONS = {
    "properties": {
        "sym": {
            "type": "boolean",
            "default": False,
            "description": "Symmetric grids (GPTQ's: scale 2 max|w| / (2^b - 1), zero 2^(b-1)) "
            "instead of asymmetric ones.",
        },
        "group_size": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": 128,
            "description": "Input columns sharing one grid; null: one grid per output row.",
        },
    }
}


@register_method("rtn")
class RoundToNearest(CompressionMethod):
    paper = "the RTN baseline of GPTQ and AWQ (Lin et al. 2024)"
    family = "quantization"
    level_kind = "integer"
    options_schema = OPTIONS
    summary = "round-to-nearest weight-only quantization per group of input columns"

    def check_level(self, level: Any) -> str | None:
        if isinstance(level, bool) or not isinstance(level, int) or not 2 <= level <= 8:
            return f"rtn quantizes to 2 to 8 bits, got {level!r}"
        return None

    def _options(self, options: Mapping[str, Any]) -> tuple[int | None, bool]:
        merged = {**self.defaults(), **options}
        return merged["group_size"], bool(merged["sym"])

    def apply(self, model: Any, level: Any, options: Mapping[str, Any], context: Context) -> dict:
        from compfair.compression.quantize import quantize_model
        from compfair.io import InputError

        problem = self.check_level(level)
        if problem:
            raise InputError(problem)
        group_size, sym = self._options(options)
        return quantize_model(model, int(level), group_size, sym)

    def verify(self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping) -> dict:
        from compfair.compression.quantize import verify_model

        group_size, sym = self._options(options)
        return verify_model(model, int(level), group_size, sym, report)
