"""Calibration runs, block by block: what every matrix reads, with earlier blocks compressed.

The sequential scheme of the Wanda, SparseGPT and GPTQ reference code, for any
causal LM whose decoder blocks :func:`compfair.architecture.find_blocks` finds:

1. the calibration sequences go through the model once, in batches, with every
   decoder block's ``forward`` replaced by a recorder: block 0's recorder keeps
   its input hidden states (fp32, on the CPU), and every block's recorder keeps
   the other positional and keyword arguments of its real call (attention mask,
   position ids, rotary ``position_embeddings``, ALiBi, ``use_cache=False``...),
   so that each block is later replayed exactly as the model calls it (per-block
   arguments such as Gemma-2's sliding-window masks included). The last
   recorder stops the forward pass, so the LM head never runs;
2. for each block in turn: run it on its inputs with forward hooks on its
   matrices (:func:`compfair.architecture.block_matrices`), accumulating per
   matrix the statistic a method asks for (:class:`LayerInputs`); hand every
   matrix with its statistic to the method, which compresses it in place; then
   run the *compressed* block again on the same inputs: its outputs are the
   next block's inputs.

Only one block's inputs (``n_sequences x seq_len x hidden`` in fp32, on the
CPU) are held at a time; each batch is moved to the model's device (and dtype)
to run. All matrices of a block are measured in the same pass (the references'
default; no "true sequential" order inside a block). Matrices that read the
same tensor in the same call (Llama's q/k/v, gate/up) share one statistic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from compfair.architecture import block_matrices, describe, find_blocks

log = logging.getLogger(__name__)

#: What a method can ask the calibration run to accumulate per matrix.
STATISTICS = ("norms", "hessian")

#: ``compress(full_name, module, stats) -> report``: compresses ``module`` in place.
CompressFn = Callable[[str, nn.Module, "LayerInputs"], dict[str, Any]]


@dataclass
class LayerInputs:
    """What one matrix read during calibration, summed over every calibration token.

    ``n_rows`` counts the input rows (tokens). With statistic ``"norms"``,
    ``sq_sum[j]`` (``[in_features]``, fp32) is ``sum_t x_tj**2``; with
    ``"hessian"``, ``xtx`` (``[in_features, in_features]``, fp32) is ``X^T X``.
    Shared by matrices that read the same tensor: treat it as read-only.
    """

    statistic: str
    n_rows: int = 0
    sq_sum: torch.Tensor | None = None
    xtx: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        """Accumulate the rows of ``x`` (``[..., in_features]``, any float dtype)."""
        rows = x.detach().reshape(-1, x.shape[-1]).float()
        if self.statistic == "norms":
            sq = rows.pow(2).sum(dim=0)
            self.sq_sum = sq if self.sq_sum is None else self.sq_sum + sq
        else:
            if self.xtx is None:
                self.xtx = rows.t() @ rows
            else:
                self.xtx.addmm_(rows.t(), rows)
        self.n_rows += rows.shape[0]

    def column_norms(self) -> torch.Tensor:
        """``||X_j||_2`` over all calibration tokens, per input feature (``[in_features]``)."""
        sq = self.sq_sum if self.sq_sum is not None else torch.diagonal(self.xtx)
        if sq is None:
            raise RuntimeError("no calibration input was recorded")
        return sq.clamp_min(0).sqrt()

    def hessian(self) -> torch.Tensor:
        """``H = 2 X^T X / n_rows`` (a new ``[in, in]`` fp32 tensor), the layer-wise OBS Hessian."""
        if self.xtx is None or self.n_rows == 0:
            raise RuntimeError("no Hessian was recorded (statistic 'hessian' not requested?)")
        return self.xtx * (2.0 / self.n_rows)


@dataclass
class _Call:
    """How the model called one block on one batch, less the hidden states."""

    args: tuple
    kwargs: dict[str, Any]
    hidden_key: str | None = None  # the keyword that carried the hidden states, if any


class _Stop(Exception):
    """Raised by the last block's recorder: the rest of the forward pass is not needed."""


@dataclass
class _Capture:
    inputs: list[torch.Tensor] = field(default_factory=list)  # block 0's, per batch
    calls: list[list[_Call]] = field(default_factory=list)  # [block][batch]
    tuple_tail: tuple | None = None  # what follows the hidden states in a tuple output


def _split_hidden(args: tuple, kwargs: dict) -> tuple[torch.Tensor, _Call]:
    if args:
        return args[0], _Call(tuple(args[1:]), dict(kwargs))
    if "hidden_states" in kwargs:
        rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        return kwargs["hidden_states"], _Call((), rest, "hidden_states")
    raise RuntimeError(
        f"a decoder block was called without hidden states (kwargs {sorted(kwargs)})"
    )


def _recorder(index: int, n_blocks: int, block: nn.Module, state: _Capture) -> Callable:
    real_forward = block.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        hidden, call = _split_hidden(args, kwargs)
        state.calls[index].append(call)
        if index == 0:
            state.inputs.append(hidden.detach().to("cpu", torch.float32, copy=True))
        if index == n_blocks - 1:
            raise _Stop
        if index == 0:  # the real output tells what the model expects a block to return
            out = real_forward(*args, **kwargs)
            state.tuple_tail = tuple(out[1:]) if isinstance(out, (tuple, list)) else None
            return out
        # Later blocks pass their input on: the arguments the model computes
        # before its loop (masks, positions) do not depend on the hidden states.
        return hidden if state.tuple_tail is None else (hidden, *state.tuple_tail)

    return forward


def capture_block_calls(
    model: nn.Module, calibration: torch.Tensor, batch_size: int
) -> tuple[list[torch.Tensor], list[list[_Call]]]:
    """Block 0's inputs per batch (fp32, CPU) and every block's call arguments per batch.

    ``calibration`` is a ``[n_sequences, seq_len]`` LongTensor; batches are
    ``batch_size`` consecutive sequences. Returns ``(inputs, calls)`` with
    ``inputs[b]`` of shape ``[batch, seq_len, hidden]`` and ``calls[i][b]`` the
    arguments of block ``i`` on batch ``b``. Raises ``RuntimeError`` naming the
    model if a block is not called once per batch.
    """
    _, blocks = find_blocks(model)
    state = _Capture(calls=[[] for _ in blocks])
    device = next(model.parameters()).device
    for i, block in enumerate(blocks):
        block.forward = _recorder(i, len(blocks), block, state)
    try:
        for start in range(0, calibration.shape[0], batch_size):
            ids = calibration[start : start + batch_size].to(device)
            try:
                model(input_ids=ids, use_cache=False)
            except _Stop:
                pass
    finally:
        for block in blocks:
            del block.forward  # back to the class's forward
    n_batches = len(state.inputs)
    if any(len(calls) != n_batches for calls in state.calls):
        raise RuntimeError(
            f"{describe(model)}: decoder blocks were not each called once per calibration batch "
            f"({[len(c) for c in state.calls]} calls for {n_batches} batches)"
        )
    return state.inputs, state.calls


def run_block(block: nn.Module, call: _Call, hidden: torch.Tensor) -> torch.Tensor:
    """``block``'s output hidden states (fp32, CPU) for input ``hidden``, called as recorded."""
    param = next(block.parameters())
    x = hidden.to(device=param.device, dtype=param.dtype)
    if call.hidden_key is None:
        out = block(x, *call.args, **call.kwargs)
    else:
        out = block(*call.args, **{**call.kwargs, call.hidden_key: x})
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.detach().to("cpu", torch.float32)


def _collect(
    block: nn.Module, calls: Sequence[_Call], inputs: Sequence[torch.Tensor], statistic: str
) -> dict[str, LayerInputs]:
    """Run ``block`` on every batch with hooks on its matrices; their statistics by name."""
    matrices = block_matrices(block)
    stats: dict[str, LayerInputs] = {}
    # Per call: the tensors already seen, so that matrices reading the same one share it.
    seen: list[tuple[torch.Tensor, int, LayerInputs]] = []

    def hook(name: str) -> Callable:
        def record(module: nn.Module, args: tuple, _output: Any) -> None:
            x = args[0]
            shared = next((s for t, v, s in seen if t is x and v == x._version), None)
            if shared is not None:  # a tensor another matrix already read in this call
                if stats.setdefault(name, shared) is not shared:
                    raise RuntimeError(f"{type(block).__name__}.{name}: inputs shared unevenly")
                return
            target = stats.setdefault(name, LayerInputs(statistic))
            if any(s is target for _, _, s in seen):
                raise RuntimeError(f"{type(block).__name__}.{name}: inputs shared unevenly")
            target.add(x)
            seen.append((x, x._version, target))

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in matrices]
    try:
        for call, hidden in zip(calls, inputs, strict=True):
            run_block(block, call, hidden)
            seen.clear()
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name, _ in matrices if name not in stats]
    if missing:
        raise RuntimeError(f"{type(block).__name__}: matrices {missing} read no calibration input")
    return stats


def compress_sequentially(
    model: nn.Module,
    calibration: torch.Tensor,
    statistic: str,
    compress: CompressFn,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """Compress every block's matrices in turn, each measured on inputs from compressed blocks.

    ``calibration``: ``[n_sequences, seq_len]`` token ids. ``statistic``: one of
    :data:`STATISTICS`. ``compress(full_name, module, stats)`` is called for each
    matrix of each block (block order, then module order; full names as in
    :func:`compfair.architecture.compressible_matrices`) and must compress the
    module in place; its reports are returned by full name. The model is put in
    eval mode for the run and gets its mode back. Raises ``ValueError`` for an
    unknown statistic or empty calibration.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if calibration is None or calibration.dim() != 2 or calibration.numel() == 0:
        raise ValueError("calibration must be a non-empty [n_sequences, seq_len] tensor of ids")
    prefix, blocks = find_blocks(model)
    was_training = model.training
    model.eval()
    reports: dict[str, dict[str, Any]] = {}
    try:
        with torch.no_grad():
            inputs, calls = capture_block_calls(model, calibration, batch_size)
            for i, block in enumerate(tqdm(blocks, desc="compressing blocks", unit="block")):
                stats = _collect(block, calls[i], inputs, statistic)
                for name, module in block_matrices(block):
                    reports[f"{prefix}.{i}.{name}"] = compress(
                        f"{prefix}.{i}.{name}", module, stats[name]
                    )
                del stats
                if i + 1 < len(blocks):  # the next block reads this one's compressed output
                    inputs = [run_block(block, c, h) for c, h in zip(calls[i], inputs, strict=True)]
                log.debug("calibrated block %d/%d of %s", i + 1, len(blocks), describe(model))
    finally:
        model.train(was_training)
    return reports
