"""The one driver of every compression method: parent folder in, verified folder out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from compfair import io
from compfair.compression import CompressionMethod, Context, get_method
from compfair.io import InputError, PathLike
from compfair.models import count_parameters, load_model, read_provenance, write_model_folder

log = logging.getLogger(__name__)

REPORT_FILE = "compression.json"


def calibration_windows(
    tokens: torch.Tensor, n_sequences: int, seq_len: int, seed: int
) -> torch.Tensor:
    """``[n_sequences, seq_len]`` windows drawn (seeded, without overlap) from a token stream.

    The stream is cut into consecutive windows of ``seq_len`` and
    ``n_sequences`` of them are drawn without replacement; a stream too short
    for that many raises :class:`InputError` with the numbers.
    """
    n_windows = tokens.numel() // seq_len
    if n_windows < n_sequences:
        raise InputError(
            f"calibration: {n_sequences} sequences of {seq_len} tokens need "
            f"{n_sequences * seq_len} training tokens, the split has {tokens.numel()} "
            f"(lower calibration.n_sequences or calibration.seq_len)"
        )
    generator = torch.Generator().manual_seed(int(seed))
    starts = torch.randperm(n_windows, generator=generator)[:n_sequences].sort().values * seq_len
    return torch.stack([tokens[s : s + seq_len] for s in starts.tolist()])


def compress_model(
    parent_dir: PathLike,
    out_dir: PathLike,
    method: str,
    level: Any,
    options: Mapping[str, Any],
    seed: int,
    calibration_tokens: PathLike | None = None,
    calibration: Mapping[str, int] | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """Compress the model folder ``parent_dir`` with ``method`` at ``level`` into ``out_dir``.

    The method compresses the loaded parent in place; the result is saved to
    a temporary folder, reloaded, and verified by the method on the reloaded
    copy (a wrong sparsity or bit width raises and leaves no ``out_dir``).
    ``out_dir`` then holds the model, ``provenance.json`` and
    ``compression.json`` (the method's report plus the verification).
    ``calibration_tokens`` (a token file of the training split) and
    ``calibration`` (``n_sequences``, ``seq_len``) are used when the method
    needs calibration data.
    """
    impl = get_method(method)
    model, tokenizer = load_model(parent_dir)
    context = Context(seed=int(seed), tokenizer=tokenizer)
    if impl.needs_calibration:
        if calibration_tokens is None or not calibration:
            raise InputError(
                f"method {method!r} needs calibration data (calibration.* in the config)"
            )
        from compfair.training import load_tokens

        tokens = load_tokens(calibration_tokens, model.config.vocab_size)
        context.calibration = calibration_windows(
            tokens, int(calibration["n_sequences"]), int(calibration["seq_len"]), seed
        )
    log.info("compressing %s with %s at level %s (%s)", parent_dir, method, level, dict(options))
    with torch.no_grad():
        report = impl.apply(model, level, options, context)
    model = context.extra.pop("model", model)  # a method may build a new model (depth pruning)
    prov = io.provenance(
        step="compress_model",
        variant=variant,
        method=method,
        summary=impl.summary,
        level=level,
        options=dict(options),
        seed=int(seed),
        parent=str(parent_dir),
        parent_provenance=read_provenance(parent_dir),
        n_parameters=count_parameters(model),
    )
    report = save_verified(model, tokenizer, impl, level, report, prov, out_dir, options)
    log.info("saved %s to %s", variant or method, out_dir)
    return report


def save_verified(
    model: Any,
    tokenizer: Any,
    impl: CompressionMethod,
    level: Any,
    report: Mapping[str, Any],
    prov: Mapping[str, Any],
    out_dir: PathLike,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Save ``model`` to ``out_dir`` (atomically), reload it and verify it with ``impl``.

    ``out_dir`` then holds the model, ``provenance.json`` (``prov``) and
    ``compression.json``: ``report`` plus the verification's measurements.
    A failed verification raises and leaves no ``out_dir``.
    """
    options = impl.defaults() if options is None else options
    with io.atomic_dir(out_dir) as tmp:
        write_model_folder(model, tokenizer, tmp, dict(prov))
        reloaded, _ = load_model(tmp)
        report = {**report, **impl.verify(reloaded, level, options, report)}
        io.write_json(Path(tmp) / REPORT_FILE, {"method": impl.name, "level": level, **report})
    return report
