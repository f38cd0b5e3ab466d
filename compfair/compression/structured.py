"""Structured pruning of any causal LM: attention heads, MLP channels and whole decoder layers.

The structure comes from :mod:`compfair.architecture` (:func:`attention_heads`,
:func:`mlp_channels`, :func:`keep_blocks`), so the same code prunes GPT-2's
fused ``Conv1D`` ``c_attn``, GPT-NeoX's per-head fused ``query_key_value`` and
Llama's separate grouped-query projections. Heads and channels are *zeroed*,
not cut out: the saved folder keeps its shapes and loads with plain
transformers, and the removed parts contribute exactly nothing.

- A removed attention head has its query rows (weight and bias) and its
  output-projection input columns zeroed; with grouped-query attention the
  key/value rows of a key/value head are zeroed too once every query head that
  reads it is removed (and only then: the others still read them). The head's
  contribution to the residual stream is then exactly zero; in multi-head
  attention its value rows are zeroed as well, so its output is zero too.
- A removed MLP channel has its input rows (up, gate, fc1, ..., with biases)
  and its output-matrix column zeroed.
- Depth pruning builds a new model from the kept decoder blocks.

Each remover returns a JSON-serialisable report, and each ``check_*``
function re-derives what was removed from a reloaded model's zeros alone and
raises ``RuntimeError`` if it disagrees with the level or the report.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from compfair.architecture import (
    AttentionHeads,
    MlpChannels,
    Slice,
    attention_heads,
    find_blocks,
    keep_blocks,
    mlp_channels,
    weight_out_in,
)
from compfair.io import InputError

log = logging.getLogger(__name__)

#: Calibration sequences per forward pass (bounds the hidden states held at once).
BATCH = 4


def state_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes and bytes), independent of their layout."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def n_to_remove(share: float, total: int, what: str) -> int:
    """``round(share * total)``; ``InputError`` if that removes none or all of ``total``."""
    n = round(float(share) * total)
    if not 0 < n < total:
        raise InputError(
            f"level {share}: round({share} x {total} {what}) = {n} removes "
            f"{'none' if n <= 0 else 'all'} of them; choose a level that removes 1 to {total - 1}"
        )
    return n


def lowest(scores: torch.Tensor, n: int) -> list[int]:
    """Indices of the ``n`` lowest scores, ties broken by position, in increasing index order."""
    order = torch.sort(scores.to(torch.float64), stable=True).indices
    return sorted(int(i) for i in order[:n])


# --------------------------------------------------------------------------- zeros


def zero_rows(rows: Slice) -> None:
    """Zero the rows (outputs) ``rows.index`` of a matrix and its bias."""
    weight_out_in(rows.module)[rows.index] = 0.0
    if getattr(rows.module, "bias", None) is not None:
        rows.module.bias.detach()[rows.index] = 0.0


def zero_columns(cols: Slice) -> None:
    """Zero the columns (inputs) ``cols.index`` of a matrix."""
    weight_out_in(cols.module)[:, cols.index] = 0.0


def rows_are_zero(rows: Slice) -> bool:
    """Whether the rows ``rows.index`` of the matrix, and their bias entries, are all exactly 0."""
    if bool(weight_out_in(rows.module)[rows.index].any()):
        return False
    bias = getattr(rows.module, "bias", None)
    return bias is None or not bool(bias.detach()[rows.index].any())


def columns_are_zero(cols: Slice) -> bool:
    """Whether the columns ``cols.index`` of the matrix are all exactly 0."""
    return not bool(weight_out_in(cols.module)[:, cols.index].any())


# --------------------------------------------------------------------------- calibration


def _first_tensor(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


@contextmanager
def _hooks(handles: list[Any]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def forward_calibration(model: nn.Module, calibration: Any, after_batch: Callable[[], None]) -> int:
    """Run ``model`` on the calibration ids, :data:`BATCH` rows at a time; return the token count.

    ``calibration`` is a ``[n_sequences, seq_len]`` LongTensor (``InputError``
    if missing or of another shape); ``after_batch`` runs after each forward
    pass (hooks collect what they need during it).
    """
    if not isinstance(calibration, torch.Tensor) or calibration.dim() != 2:
        raise InputError("this method needs calibration data: a [n_sequences, seq_len] id tensor")
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, calibration.shape[0], BATCH):
            model(input_ids=calibration[start : start + BATCH].to(device), use_cache=False)
            after_batch()
    return int(calibration.numel())


# --------------------------------------------------------------------------- heads


def head_maps(model: nn.Module) -> list[AttentionHeads]:
    """:func:`compfair.architecture.attention_heads` of every decoder block."""
    return [attention_heads(block, model.config) for block in find_blocks(model)[1]]


def head_weight_scores(info: AttentionHeads) -> torch.Tensor:
    """``||W_o[:, head]||_F * ||W_v[head's value rows]||_F`` per query head (float64 ``[heads]``)."""
    out = []
    for h in range(info.num_heads):
        cols = info.output_columns(h)
        vals = info.value_rows(h // info.group_size)
        o_norm = weight_out_in(cols.module)[:, cols.index].double().norm()
        out.append(o_norm * weight_out_in(vals.module)[vals.index].double().norm())
    return torch.stack(out)


def head_activation_scores(model: nn.Module, calibration: Any) -> list[torch.Tensor]:
    """Per block, the mean L2 norm of each head's contribution ``W_o[:, head] @ o_head`` a token.

    ``o_head`` is the head's slice of what the output projection reads, on the
    calibration data; returns float64 ``[heads]`` per block.
    """
    maps = head_maps(model)
    sums = [torch.zeros(info.num_heads, dtype=torch.float64) for info in maps]

    def hook(i: int) -> Callable[..., None]:
        info = maps[i]
        w_o = weight_out_in(info.output[1])

        def record(_module: nn.Module, args: tuple) -> None:
            x = args[0]
            for h in range(info.num_heads):
                cols = info.output_columns(h).index
                part = x[..., cols] @ w_o[:, cols].t()
                sums[i][h] += part.double().norm(dim=-1).sum().cpu()

        return record

    handles = [info.output[1].register_forward_pre_hook(hook(i)) for i, info in enumerate(maps)]
    with _hooks(handles):
        n_tokens = forward_calibration(model, calibration, lambda: None)
    return [s / n_tokens for s in sums]


def remove_heads(model: nn.Module, share: float, scores: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Zero the ``round(share * heads)`` lowest-scored heads of every block, in place.

    Returns ``{"removed": [[layer, head], ...], "removed_kv_heads": [[layer,
    kv_head], ...], "heads_per_layer", "removed_per_layer", "measured",
    "scores"}``; ``measured`` is the removed share over all heads.
    """
    maps = head_maps(model)
    removed: list[list[int]] = []
    removed_kv: list[list[int]] = []
    for layer, (info, score) in enumerate(zip(maps, scores, strict=True)):
        heads = lowest(score, n_to_remove(share, info.num_heads, "attention heads"))
        for h in heads:
            zero_rows(info.query_rows(h))
            zero_columns(info.output_columns(h))
            removed.append([layer, h])
        for g in range(info.num_key_value_heads):
            if all(h in heads for h in range(g * info.group_size, (g + 1) * info.group_size)):
                zero_rows(info.key_rows(g))
                zero_rows(info.value_rows(g))
                removed_kv.append([layer, g])
    total = sum(info.num_heads for info in maps)
    log.info("removed %d of %d attention heads", len(removed), total)
    return {
        "removed": removed,
        "removed_kv_heads": removed_kv,
        "heads_per_layer": [info.num_heads for info in maps],
        "removed_per_layer": [sum(1 for lay, _ in removed if lay == i) for i in range(len(maps))],
        "measured": len(removed) / total,
        "scores": [[float(v) for v in s] for s in scores],
    }


def check_heads(model: nn.Module, share: float, report: Mapping[str, Any]) -> dict[str, Any]:
    """Find the removed heads of a reloaded model from its zeros; raise if off level or report.

    A head counts as removed when its query rows (and bias) and its output
    columns are exactly zero; a key/value head when its key and value rows are.
    Every block must have ``round(share * heads)`` removed heads, and the heads
    and key/value heads found must be those of the report.
    """
    found: list[list[int]] = []
    found_kv: list[list[int]] = []
    for layer, info in enumerate(head_maps(model)):
        heads = [
            h
            for h in range(info.num_heads)
            if rows_are_zero(info.query_rows(h)) and columns_are_zero(info.output_columns(h))
        ]
        if len(heads) != round(float(share) * info.num_heads):
            raise RuntimeError(
                f"layer {layer}: {len(heads)} of {info.num_heads} heads are zero, "
                f"level {share} asks for {round(float(share) * info.num_heads)}"
            )
        found += [[layer, h] for h in heads]
        found_kv += [
            [layer, g]
            for g in range(info.num_key_value_heads)
            if rows_are_zero(info.key_rows(g)) and rows_are_zero(info.value_rows(g))
        ]
    if found != [list(p) for p in report["removed"]]:
        raise RuntimeError(f"zeroed heads {found} differ from the removed ones {report['removed']}")
    if found_kv != [list(p) for p in report["removed_kv_heads"]]:
        raise RuntimeError(f"zeroed key/value heads {found_kv} differ from the report")
    total = sum(report["heads_per_layer"])
    return {"measured_after_reload": len(found) / total, "removed_after_reload": len(found)}


# --------------------------------------------------------------------------- MLP channels


def channel_maps(model: nn.Module) -> list[MlpChannels]:
    """:func:`compfair.architecture.mlp_channels` of every decoder block."""
    return [mlp_channels(block) for block in find_blocks(model)[1]]


def _input_row_norms(info: MlpChannels) -> torch.Tensor:
    """Per channel, the L2 norm of all its input rows together (up and gate), float64."""
    sq = torch.zeros(info.num_channels, dtype=torch.float64, device=info.output[1].weight.device)
    for _, module, offset in info.inputs:
        rows = weight_out_in(module)[offset : offset + info.num_channels].double()
        sq += rows.square().sum(dim=1)
    return sq.sqrt()


def channel_weight_scores(info: MlpChannels) -> torch.Tensor:
    """``||input rows of c||_2 * ||W_down[:, c]||_2`` per channel (float64 ``[channels]``)."""
    return _input_row_norms(info) * weight_out_in(info.output[1]).double().norm(dim=0)


def channel_activation_scores(model: nn.Module, calibration: Any) -> list[torch.Tensor]:
    """Per block, ``mean |a_c| * ||W_down[:, c]||`` per channel: its mean contribution's norm.

    ``a_c`` is channel ``c`` of what the MLP's output matrix reads on the
    calibration data, so each score is the average L2 norm of what the channel
    adds to the residual stream. Float64 ``[channels]`` per block.
    """
    maps = channel_maps(model)
    sums = [torch.zeros(info.num_channels, dtype=torch.float64) for info in maps]

    def hook(i: int) -> Callable[..., None]:
        def record(_module: nn.Module, args: tuple) -> None:
            x = args[0]
            sums[i].add_(x.abs().reshape(-1, x.shape[-1]).double().sum(dim=0).cpu())

        return record

    handles = [info.output[1].register_forward_pre_hook(hook(i)) for i, info in enumerate(maps)]
    with _hooks(handles):
        n_tokens = forward_calibration(model, calibration, lambda: None)
    return [
        s / n_tokens * weight_out_in(info.output[1]).double().norm(dim=0).cpu()
        for s, info in zip(sums, maps, strict=True)
    ]


def remove_channels(
    model: nn.Module, share: float, scores: Sequence[torch.Tensor]
) -> dict[str, Any]:
    """Zero the ``round(share * channels)`` lowest-scored MLP channels of every block, in place.

    Returns ``{"removed": [[channel, ...] per layer], "channels_per_layer",
    "measured"}``.
    """
    maps = channel_maps(model)
    removed: list[list[int]] = []
    for info, score in zip(maps, scores, strict=True):
        chans = lowest(score, n_to_remove(share, info.num_channels, "MLP channels"))
        for rows in info.channel_rows(chans):
            zero_rows(rows)
        zero_columns(info.channel_columns(chans))
        removed.append(chans)
    total = sum(info.num_channels for info in maps)
    n_removed = sum(len(c) for c in removed)
    log.info("removed %d of %d MLP channels", n_removed, total)
    return {
        "removed": removed,
        "channels_per_layer": [info.num_channels for info in maps],
        "measured": n_removed / total,
    }


def _zero_channels(info: MlpChannels) -> list[int]:
    """Channels whose input rows (and biases) and output column are all exactly zero."""
    nonzero = weight_out_in(info.output[1]).ne(0).any(dim=0)
    for _, module, offset in info.inputs:
        nonzero |= weight_out_in(module)[offset : offset + info.num_channels].ne(0).any(dim=1)
        bias = getattr(module, "bias", None)
        if bias is not None:
            nonzero |= bias.detach()[offset : offset + info.num_channels].ne(0)
    return (~nonzero).nonzero().flatten().tolist()


def check_channels(model: nn.Module, share: float, report: Mapping[str, Any]) -> dict[str, Any]:
    """Find the removed channels of a reloaded model from its zeros; raise if off level or report."""
    found = []
    for layer, info in enumerate(channel_maps(model)):
        chans = _zero_channels(info)
        want = round(float(share) * info.num_channels)
        if len(chans) != want:
            raise RuntimeError(
                f"layer {layer}: {len(chans)} of {info.num_channels} MLP channels are zero, "
                f"level {share} asks for {want}"
            )
        found.append(chans)
    if found != [list(c) for c in report["removed"]]:
        raise RuntimeError("zeroed MLP channels differ from the removed ones of the report")
    total = sum(report["channels_per_layer"])
    return {"measured_after_reload": sum(len(c) for c in found) / total}


# --------------------------------------------------------------------------- depth


def _block_input(args: tuple, kwargs: Mapping[str, Any]) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def block_similarities(model: nn.Module, calibration: Any, span: int) -> dict[str, torch.Tensor]:
    """How much each run of ``span`` consecutive blocks changes the hidden states.

    For every start ``l`` (``0 .. n_blocks - span``): the cosine between the
    hidden state entering block ``l`` and the one leaving block ``l + span -
    1``, per token, averaged over all calibration tokens (``"cosine"``), and
    the mean angular distance ``arccos(cos) / pi`` (``"angular"``); float64
    ``[n_blocks - span + 1]`` each. Read from hooks on the blocks, so the final
    norm that ``output_hidden_states`` applies to the last state does not enter.
    """
    _, blocks = find_blocks(model)
    n_runs = len(blocks) - span + 1
    inputs: dict[int, torch.Tensor] = {}
    outputs: dict[int, torch.Tensor] = {}
    cos_sum = torch.zeros(n_runs, dtype=torch.float64)
    ang_sum = torch.zeros(n_runs, dtype=torch.float64)

    def pre(i: int) -> Callable[..., None]:
        return lambda _m, args, kwargs: inputs.__setitem__(i, _block_input(args, kwargs).detach())

    def post(i: int) -> Callable[..., None]:
        return lambda _m, _args, output: outputs.__setitem__(i, _first_tensor(output).detach())

    def after_batch() -> None:
        for start in range(n_runs):
            a, b = inputs[start].double(), outputs[start + span - 1].double()
            cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1.0, 1.0)
            cos_sum[start] += cos.sum().cpu()
            ang_sum[start] += (torch.arccos(cos) / torch.pi).sum().cpu()
        inputs.clear()
        outputs.clear()

    handles = [b.register_forward_pre_hook(pre(i), with_kwargs=True) for i, b in enumerate(blocks)]
    handles += [b.register_forward_hook(post(i)) for i, b in enumerate(blocks)]
    with _hooks(handles):
        n_tokens = forward_calibration(model, calibration, after_batch)
    return {"cosine": cos_sum / n_tokens, "angular": ang_sum / n_tokens}


def choose_layers(
    model: nn.Module, share: float, calibration: Any, selection: str, protected: set[int]
) -> tuple[list[int], list[float]]:
    """``(removed block indices, their scores)``: the ``round(share * n)`` least important blocks.

    ``selection="individual"`` (ShortGPT, Men et al. 2024): each block's Block
    Influence ``1 - mean cos(h_in, h_out)``, the lowest removed.
    ``selection="contiguous"`` (Gromov et al. 2024): the run of consecutive
    blocks whose input and output are closest in mean angular distance. No
    block in ``protected`` is removed (``InputError`` if too few are left).
    """
    n_blocks = len(find_blocks(model)[1])
    n = n_to_remove(share, n_blocks, "decoder layers")
    eligible = [i for i in range(n_blocks) if i not in protected]
    if len(eligible) < n:
        raise InputError(
            f"level {share}: {n} of {n_blocks} layers to remove, but only {len(eligible)} "
            f"are not protected (keep_first / keep_last)"
        )
    if selection == "individual":
        scores = 1.0 - block_similarities(model, calibration, 1)["cosine"]
        pick = [eligible[i] for i in lowest(scores[eligible], n)]
        return pick, [float(s) for s in scores]
    if selection != "contiguous":
        raise InputError(f"options.selection: {selection!r} is not 'individual' or 'contiguous'")
    scores = block_similarities(model, calibration, n)["angular"]
    starts = [s for s in range(n_blocks - n + 1) if not protected & set(range(s, s + n))]
    if not starts:
        raise InputError(f"level {share}: no run of {n} consecutive unprotected layers")
    best = lowest(scores[starts], 1)[0]
    return list(range(starts[best], starts[best] + n)), [float(s) for s in scores]


def prune_depth(
    model: nn.Module, share: float, calibration: Any, selection: str, protected: set[int]
) -> tuple[nn.Module, dict[str, Any]]:
    """``(a new model without the chosen blocks, report)``; ``model`` itself is not changed.

    The report has ``n_layers_parent``, ``kept`` and ``removed`` (block
    indices of the parent), ``selection``, ``scores`` (per block for
    ``individual``, per run start for ``contiguous``) and ``block_digests``
    (:func:`state_digest` of each kept parent block, in the new order).
    """
    prefix, blocks = find_blocks(model)
    removed, scores = choose_layers(model, share, calibration, selection, protected)
    kept = [i for i in range(len(blocks)) if i not in removed]
    report = {
        "n_layers_parent": len(blocks),
        "kept": kept,
        "removed": removed,
        "selection": selection,
        "importance": "block_influence" if selection == "individual" else "angular_distance",
        "scores": scores,
        "block_digests": [state_digest(blocks[i].state_dict()) for i in kept],
    }
    log.info("depth pruning %s: removing layers %s of %d", prefix, removed, len(blocks))
    return keep_blocks(model, kept), report


def check_depth(model: nn.Module, share: float, report: Mapping[str, Any]) -> dict[str, Any]:
    """Raise unless the reloaded model has ``n - round(share * n)`` blocks equal to the kept ones."""
    _, blocks = find_blocks(model)
    n_parent = int(report["n_layers_parent"])
    want = n_parent - round(float(share) * n_parent)
    config_count = getattr(model.config, "num_hidden_layers", len(blocks))
    if not len(blocks) == want == len(report["kept"]) == config_count:
        raise RuntimeError(
            f"{len(blocks)} decoder blocks (config says {config_count}); level {share} of "
            f"{n_parent} layers asks for {want}"
        )
    for j, block in enumerate(blocks):
        if state_digest(block.state_dict()) != report["block_digests"][j]:
            raise RuntimeError(f"block {j} differs from the parent's layer {report['kept'][j]}")
    return {"n_layers_after_reload": len(blocks)}
