"""Where the decoder blocks and the matrices to compress are, in any Hugging Face causal LM.

Nothing here is keyed on a table of architectures for the parts every
compression method needs: the decoder blocks are found from the model's
modules (:func:`find_blocks`), the matrices to compress are the ``nn.Linear``
and ``transformers`` ``Conv1D`` layers inside them (:func:`block_matrices`,
:func:`compressible_matrices`), and :func:`weight_out_in` is the one place where
Conv1D's ``[in, out]`` storage is turned into the ``[out, in]`` view that
row-wise methods (Wanda, SparseGPT/GPTQ, per-channel quantization) work on.
:func:`keep_blocks` makes a shallower copy of a model (distillation students,
depth pruning).

Structured pruning needs more: which rows and columns make one attention head
(:func:`attention_heads`) or one MLP channel (:func:`mlp_channels`). Separate
q/k/v projections are recognised by name in any model; a fused q/k/v matrix has
a layout that its names do not reveal, so fused layouts are taken from a short
table of checked ``model_type`` values (:data:`FUSED_QKV_LAYOUTS`) and any other
raises ``ValueError``.

Mixture-of-experts: transformers 5 keeps expert weights as 3-D parameters and
routers as their own modules, neither of them ``nn.Linear``, so neither is a
compressible matrix; router-like ``nn.Linear`` layers (last name in
:data:`ROUTER_NAMES`) are excluded too, because pruning them changes which
experts run rather than compressing one. Shared-expert MLPs are ordinary
matrices. :func:`mlp_channels` refuses mixture-of-experts blocks.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

log = logging.getLogger(__name__)

#: Layer types that count as weight matrices (Falcon's ``FalconLinear`` is an ``nn.Linear``).
MATRIX_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, Conv1D)

#: Last name components of mixture-of-experts routers: never compressed.
ROUTER_NAMES = frozenset({"gate", "router", "shared_expert_gate"})

#: Config attributes that may hold the decoder layer count (``attribute_map`` aliases resolved).
LAYER_COUNT_NAMES = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")

#: Config lists with one entry per decoder layer (``layer_types``: sliding or full attention).
PER_LAYER_LISTS = ("layer_types", "no_rope_layers", "activation_sparsity_pattern")

#: Layout of a fused q/k/v matrix's output rows, per ``(model_type, matrix name)``:
#: ``"blocked"`` is ``[all q heads | all k heads | all v heads]`` (GPT-2's ``c_attn``,
#: Phi-3's ``qkv_proj``); ``"grouped"`` repeats ``[q heads of group g | k_g | v_g]``
#: per key/value group (GPT-NeoX and Bloom: ``[q_h | k_h | v_h]`` per head; Falcon's
#: three variants). Each was checked against the model's ``modeling_*.py``.
FUSED_QKV_LAYOUTS: dict[tuple[str, str], str] = {
    ("gpt2", "c_attn"): "blocked",
    ("phi3", "qkv_proj"): "blocked",
    ("gpt_neox", "query_key_value"): "grouped",
    ("bloom", "query_key_value"): "grouped",
    ("falcon", "query_key_value"): "grouped",
    # GPT-BigCode: blocked when multi_query (one k/v head), else per head (grouped).
    ("gpt_bigcode", "c_attn"): "grouped",
}

_QUERY, _KEY, _VALUE = ("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value")
_ATTN_OUTPUT = ("o_proj", "out_proj", "dense", "c_proj", "wo")

#: MLP matrices per parent module: (matrices whose output rows are the channels, the
#: matrix whose input columns are), first match wins. ``gate_up_proj`` is ``[gate | up]``.
_MLP_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gate_proj", "up_proj"), "down_proj"),
    (("gate_up_proj",), "down_proj"),
    (("up_proj",), "down_proj"),
    (("c_fc",), "c_proj"),
    (("fc_in",), "fc_out"),
    (("fc1",), "fc2"),
    (("dense_h_to_4h",), "dense_4h_to_h"),
    (("w1", "w3"), "w2"),
)


# --------------------------------------------------------------------------- blocks and matrices


def is_matrix(module: nn.Module) -> bool:
    """Whether ``module`` is a weight matrix compression works on (``nn.Linear`` or ``Conv1D``)."""
    return isinstance(module, MATRIX_TYPES)


def describe(model: Any) -> str:
    """``"GPT2LMHeadModel (model_type 'gpt2')"``: how error messages name a model."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return f"{type(model).__name__} (model_type {model_type!r})"


def _config_layer_count(config: Any) -> int | None:
    for name in LAYER_COUNT_NAMES:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _block_lists(model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """Outermost ModuleLists whose children share one class and each hold a matrix."""
    found: list[tuple[str, nn.ModuleList]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        if not all(any(is_matrix(m) for m in child.modules()) for child in module):
            continue
        # A list inside a block (per-expert MLPs, say) is part of that block, not the blocks.
        if any(name.startswith(f"{outer}.") for outer, _ in found):
            continue
        found.append((name, module))
    return found


def find_blocks(model: Any) -> tuple[str, nn.ModuleList]:
    """The dotted path and the ``nn.ModuleList`` of the model's repeated decoder blocks.

    The blocks are the outermost ``nn.ModuleList`` whose children are all of one
    class and each contain an ``nn.Linear`` or ``Conv1D``; among several, the one
    whose length equals the config's layer count, then the longest, then the
    first. GPT-2: ``transformer.h``; Llama, Qwen2, Mistral, Gemma, Phi:
    ``model.layers``; GPT-NeoX: ``gpt_neox.layers``; OPT: ``model.decoder.layers``.
    Raises ``ValueError`` naming the model class and ``config.model_type`` when
    there is no such list.
    """
    lists = _block_lists(model) if isinstance(model, nn.Module) else []
    if not lists:
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        raise ValueError(
            f"unsupported architecture {model_type!r} ({type(model).__name__}): no nn.ModuleList "
            f"of decoder blocks (children of one class holding nn.Linear or Conv1D layers)"
        )
    n_config = _config_layer_count(getattr(model, "config", None))
    return max(lists, key=lambda item: (len(item[1]) == n_config, len(item[1])))


def block_matrices(block: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``nn.Linear`` / ``Conv1D`` layers of one decoder block, in module order.

    Names are relative to the block (``attn.c_attn``, ``self_attn.q_proj``).
    Mixture-of-experts routers (last name in :data:`ROUTER_NAMES`) are left out;
    expert weights kept as 3-D parameters are not layers and never appear.
    """
    return [
        (name, module)
        for name, module in block.named_modules()
        if name and is_matrix(module) and name.rsplit(".", 1)[-1] not in ROUTER_NAMES
    ]


def compressible_matrices(model: PreTrainedModel) -> list[tuple[str, nn.Module]]:
    """Every block's matrices (:func:`block_matrices`), in block order, with full names.

    Names are module paths (``transformer.h.0.attn.c_attn``; append ``.weight``
    for the parameter). Only modules inside the decoder blocks are returned:
    embeddings, final norm and LM head never are. A module shared by several
    blocks is listed once, under its first block.
    """
    prefix, blocks = find_blocks(model)
    seen: set[int] = set()
    out: list[tuple[str, nn.Module]] = []
    for i, block in enumerate(blocks):
        for name, module in block_matrices(block):
            if id(module) not in seen:
                seen.add(id(module))
                out.append((f"{prefix}.{i}.{name}", module))
    return out


# --------------------------------------------------------------------------- the [out, in] view


def weight_out_in(module: nn.Module) -> torch.Tensor:
    """The layer's weight as ``[out_features, in_features]``, a view sharing its storage.

    ``nn.Linear`` stores ``[out, in]`` and is returned as is; ``Conv1D`` stores
    ``[in, out]`` and is returned transposed. The view is detached from autograd:
    in-place edits (``view[rows] = 0``) change the layer's weight. Raises
    ``TypeError`` for any other module.
    """
    if isinstance(module, Conv1D):
        return module.weight.detach().t()
    if isinstance(module, nn.Linear):
        return module.weight.detach()
    raise TypeError(f"{type(module).__name__} is not an nn.Linear or Conv1D layer")


def in_features(module: nn.Module) -> int:
    """Number of inputs of a Linear or Conv1D layer (columns of :func:`weight_out_in`)."""
    return weight_out_in(module).shape[1]


def out_features(module: nn.Module) -> int:
    """Number of outputs of a Linear or Conv1D layer (rows of :func:`weight_out_in`)."""
    return weight_out_in(module).shape[0]


# --------------------------------------------------------------------------- keeping blocks


def _check_indices(indices: Sequence[int], n_blocks: int, model: Any) -> list[int]:
    keep = [int(i) for i in indices]
    if not keep:
        raise ValueError(f"{describe(model)}: keep_blocks needs at least one block index")
    bad = [i for i in keep if not 0 <= i < n_blocks]
    if bad:
        raise ValueError(f"{describe(model)}: block indices {bad} not in 0..{n_blocks - 1}")
    if len(set(keep)) != len(keep):
        raise ValueError(f"{describe(model)}: block indices {keep} repeat")
    return keep


def _shrink_config(config: Any, keep: list[int], n_old: int) -> None:
    """Set every layer-count attribute to ``len(keep)`` and reindex per-layer lists."""
    touched: list[str] = []
    for name in LAYER_COUNT_NAMES:
        real = config.attribute_map.get(name, name)
        value = getattr(config, real, None)
        if real not in touched and isinstance(value, int) and value == n_old:
            setattr(config, real, len(keep))
            touched.append(real)
    if not touched:
        raise ValueError(
            f"{type(config).__name__}: no layer-count attribute ({', '.join(LAYER_COUNT_NAMES)}) "
            f"equals the {n_old} decoder blocks"
        )
    for name in PER_LAYER_LISTS:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)) and len(value) == n_old:
            # Block keep[i] keeps its own entry (a sliding-window layer stays sliding).
            setattr(config, name, type(value)(value[i] for i in keep))


def _renamed_state(model: nn.Module, prefix: str, keep: list[int]) -> dict[str, torch.Tensor]:
    """The model's state with block ``keep[i]`` renamed to block ``i`` and the rest dropped."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.*)$")
    new_index = {old: new for new, old in enumerate(keep)}
    state: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        match = pattern.match(name)
        if match is None:
            state[name] = tensor
        elif int(match.group(1)) in new_index:
            state[f"{prefix}.{new_index[int(match.group(1))]}.{match.group(2)}"] = tensor
    return state


def keep_blocks(model: PreTrainedModel, indices: Sequence[int]) -> PreTrainedModel:
    """A new model with only the decoder blocks ``indices``, in that order.

    New block ``i`` is a copy of block ``indices[i]``; everything outside the
    blocks (embeddings, position embeddings, final norm, LM head) is copied. The
    config's layer count is updated under whatever name it has
    (:data:`LAYER_COUNT_NAMES`, through ``config.attribute_map``) and per-layer
    lists (:data:`PER_LAYER_LISTS`) keep the entries of the kept blocks. Tied
    embeddings stay tied; dtype, device, train/eval mode and generation config
    follow the input, which is not modified (nor is the global RNG). Raises
    ``ValueError`` for an empty list, an index out of range or a repeated one.
    """
    prefix, blocks = find_blocks(model)
    keep = _check_indices(indices, len(blocks), model)
    config = copy.deepcopy(model.config)
    _shrink_config(config, keep, len(blocks))
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten anyway
        new = type(model)(config)
    new.to(device=model.device, dtype=model.dtype)
    new.load_state_dict(_renamed_state(model, prefix, keep), strict=True)
    new.tie_weights()
    if getattr(model, "generation_config", None) is not None:
        new.generation_config = copy.deepcopy(model.generation_config)
    new.train(model.training)
    log.info("kept %d of %d blocks of %s: %s", len(keep), len(blocks), describe(model), keep)
    return new


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Slice:
    """Some rows or columns of one matrix: indices into a dimension of its ``[out, in]`` view.

    ``name`` is relative to the block. Rows index the outputs (and the bias);
    columns index the inputs.
    """

    name: str
    module: nn.Module
    index: torch.Tensor  # int64, 1-D


def _ranges(starts: Sequence[int], length: int) -> torch.Tensor:
    return torch.cat([torch.arange(s, s + length) for s in starts])


def _as_list(items: int | Sequence[int], n: int, what: str) -> list[int]:
    out = [int(items)] if isinstance(items, int) else [int(i) for i in items]
    bad = [i for i in out if not 0 <= i < n]
    if bad or not out:
        raise ValueError(f"{what} {out} not in 0..{n - 1}")
    return out


@dataclass(frozen=True)
class AttentionHeads:
    """Which rows and columns of one block's attention matrices belong to which head.

    Query head ``h`` reads key/value head ``h // group_size`` (grouped-query
    attention; ``group_size == 1`` is plain multi-head attention). Removing head
    ``h`` means its :meth:`query_rows` and :meth:`output_columns`; the k/v rows of
    a key/value head can go only with all ``group_size`` query heads using it.
    Zeroing :meth:`value_rows` (weight and bias) or :meth:`output_columns` makes
    the heads' contribution exactly zero.
    """

    layout: str  # "separate" (q, k, v matrices), "blocked" or "grouped" (one fused matrix)
    num_heads: int
    num_key_value_heads: int
    head_dim: int
    projections: tuple[tuple[str, nn.Module], ...]  # (q, k, v), or the one fused matrix
    output: tuple[str, nn.Module]

    @property
    def group_size(self) -> int:
        """Query heads per key/value head."""
        return self.num_heads // self.num_key_value_heads

    def _rows(self, part: int, heads: list[int]) -> Slice:
        d, n_q, n_kv, r = self.head_dim, self.num_heads, self.num_key_value_heads, self.group_size
        if self.layout == "separate":
            name, module = self.projections[part]
            return Slice(name, module, _ranges([h * d for h in heads], d))
        if self.layout == "blocked":
            offset = (0, n_q, n_q + n_kv)[part]
            starts = [(offset + h) * d for h in heads]
        elif part == 0:  # grouped: slot of query head h inside its group's [q.. | k | v]
            starts = [((h // r) * (r + 2) + h % r) * d for h in heads]
        else:
            starts = [(g * (r + 2) + r + part - 1) * d for g in heads]
        name, module = self.projections[0]
        return Slice(name, module, _ranges(starts, d))

    def query_rows(self, heads: int | Sequence[int]) -> Slice:
        """Output rows of the query projection (or fused matrix) that make query head(s) ``heads``."""
        return self._rows(0, _as_list(heads, self.num_heads, "query heads"))

    def key_rows(self, kv_heads: int | Sequence[int]) -> Slice:
        """Output rows that make key/value head(s) ``kv_heads``' keys."""
        return self._rows(1, _as_list(kv_heads, self.num_key_value_heads, "key/value heads"))

    def value_rows(self, kv_heads: int | Sequence[int]) -> Slice:
        """Output rows that make key/value head(s) ``kv_heads``' values."""
        return self._rows(2, _as_list(kv_heads, self.num_key_value_heads, "key/value heads"))

    def output_columns(self, heads: int | Sequence[int]) -> Slice:
        """Input columns of the output projection that read query head(s) ``heads``."""
        heads = _as_list(heads, self.num_heads, "query heads")
        name, module = self.output
        return Slice(name, module, _ranges([h * self.head_dim for h in heads], self.head_dim))


def _by_parent(block: nn.Module) -> dict[str, dict[str, nn.Module]]:
    """The block's matrices grouped by parent path: ``{"self_attn": {"q_proj": ...}}``."""
    groups: dict[str, dict[str, nn.Module]] = {}
    for name, module in block_matrices(block):
        parent, _, leaf = name.rpartition(".")
        groups.setdefault(parent, {})[leaf] = module
    return groups


def _pick(leaves: dict[str, nn.Module], options: Sequence[str]) -> str | None:
    return next((leaf for leaf in options if leaf in leaves), None)


def _attention_candidates(block: nn.Module, model_type: str | None) -> list[tuple[str, ...]]:
    """(layout, output name, projection names...) of each attention found in the block."""
    found: list[tuple[str, ...]] = []
    for parent, leaves in _by_parent(block).items():
        path = f"{parent}." if parent else ""
        output = _pick(leaves, _ATTN_OUTPUT)
        qkv = [_pick(leaves, options) for options in (_QUERY, _KEY, _VALUE)]
        if output is None:
            continue
        if all(qkv):
            found.append(("separate", path + output, *(path + leaf for leaf in qkv)))
            continue
        for leaf in leaves:
            layout = FUSED_QKV_LAYOUTS.get((str(model_type), leaf))
            if layout is not None and leaf != output:
                found.append((layout, path + output, path + leaf))
    return found


def _head_shapes(
    projections: Sequence[nn.Module], output: nn.Module, num_heads: int, where: str
) -> tuple[int, int]:
    """``(head_dim, num_key_value_heads)`` from the matrix shapes; ``ValueError`` if they disagree."""
    head_dim, n_kv = in_features(output) // num_heads, 0
    ok = head_dim > 0 and in_features(output) == num_heads * head_dim
    if ok and len(projections) == 3:
        q, k, v = (out_features(p) for p in projections)
        n_kv = k // head_dim
        ok = q == num_heads * head_dim and k == v == n_kv * head_dim
    elif ok:
        total = out_features(projections[0])
        n_kv = (total // head_dim - num_heads) // 2
        ok = total == (num_heads + 2 * n_kv) * head_dim
    if not ok or n_kv < 1 or num_heads % n_kv:
        shapes = [tuple(weight_out_in(m).shape) for m in (*projections, output)]
        raise ValueError(f"{where}: matrix shapes {shapes} do not fit {num_heads} heads")
    return head_dim, n_kv


def attention_heads(block: nn.Module, config: Any) -> AttentionHeads:
    """The per-head structure of one decoder block's self-attention.

    Separate q/k/v projections (``q_proj``/``k_proj``/``v_proj`` with ``o_proj``,
    ``out_proj``, ``dense`` or ``c_proj``) are recognised in any model; a fused
    q/k/v matrix only for the ``(model_type, name)`` pairs of
    :data:`FUSED_QKV_LAYOUTS`. ``num_heads`` is ``config.num_attention_heads``;
    ``head_dim`` and ``num_key_value_heads`` come from the matrix shapes. Raises
    ``ValueError`` naming the block class and ``model_type`` when no attention,
    or more than one, is found, or the shapes do not fit the head count.
    """
    model_type = getattr(config, "model_type", None)
    where = f"{type(block).__name__} (model_type {model_type!r})"
    found = _attention_candidates(block, model_type)
    if model_type == "gpt_bigcode" and getattr(config, "multi_query", False):
        found = [("blocked", *rest) for _, *rest in found]
    if len(found) != 1:
        raise ValueError(
            f"{where}: cannot identify the self-attention's q/k/v and output matrices "
            f"(found {len(found)} candidates; fused q/k/v layouts are known only for "
            f"{sorted({t for t, _ in FUSED_QKV_LAYOUTS})})"
        )
    layout, output_name, *names = found[0]
    modules = dict(block_matrices(block))
    num_heads = getattr(config, "num_attention_heads", None)
    if not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"{where}: config has no num_attention_heads")
    head_dim, n_kv = _head_shapes(
        [modules[n] for n in names], modules[output_name], num_heads, where
    )
    return AttentionHeads(
        layout=layout,
        num_heads=num_heads,
        num_key_value_heads=n_kv,
        head_dim=head_dim,
        projections=tuple((n, modules[n]) for n in names),
        output=(output_name, modules[output_name]),
    )


@dataclass(frozen=True)
class MlpChannels:
    """Which rows and columns of one block's MLP matrices make which hidden channel.

    Channel ``c`` is output row ``offset + c`` of each of ``inputs`` (up, gate,
    fc1, c_fc...; a fused ``gate_up_proj`` appears twice, offsets 0 and
    ``num_channels``) and input column ``c`` of ``output`` (down, fc2, c_proj...).
    Zeroing the rows (weight and bias) of an ungated MLP, the up rows of a gated
    one, or the output columns makes the channel contribute nothing.
    """

    num_channels: int
    inputs: tuple[tuple[str, nn.Module, int], ...]  # (name, module, row offset)
    output: tuple[str, nn.Module]

    def channel_rows(self, channels: int | Sequence[int]) -> list[Slice]:
        """Rows of each input matrix that make channel(s) ``channels``, one Slice per matrix."""
        chans = torch.tensor(_as_list(channels, self.num_channels, "MLP channels"))
        merged: dict[str, Slice] = {}
        for name, module, offset in self.inputs:
            rows = chans + offset
            if name in merged:
                rows = torch.cat([merged[name].index, rows])
            merged[name] = Slice(name, module, rows)
        return list(merged.values())

    def channel_columns(self, channels: int | Sequence[int]) -> Slice:
        """Input columns of the output matrix that read channel(s) ``channels``."""
        name, module = self.output
        return Slice(
            name, module, torch.tensor(_as_list(channels, self.num_channels, "MLP channels"))
        )


def mlp_channels(block: nn.Module) -> MlpChannels:
    """The channel structure of one decoder block's MLP.

    Recognised by the matrix names of :data:`_MLP_PATTERNS` under one parent
    (``gate_proj``/``up_proj``/``down_proj``, ``gate_up_proj``/``down_proj``,
    ``c_fc``/``c_proj``, ``fc_in``/``fc_out``, ``fc1``/``fc2``,
    ``dense_h_to_4h``/``dense_4h_to_h``, ``w1``/``w3``/``w2``) and checked against
    their shapes. Raises ``ValueError`` naming the block class for a
    mixture-of-experts block, or when not exactly one MLP is found.
    """
    where = type(block).__name__
    if any(p.dim() > 2 for p in block.parameters()) or any(
        n.rsplit(".", 1)[-1] == "experts" for n, _ in block.named_modules()
    ):
        raise ValueError(f"{where}: mixture-of-experts MLPs have no single channel structure")
    found: list[tuple[tuple[str, ...], str]] = []
    for parent, leaves in _by_parent(block).items():
        path = f"{parent}." if parent else ""
        for inputs, output in _MLP_PATTERNS:
            if output in leaves and all(leaf in leaves for leaf in inputs):
                found.append((tuple(path + leaf for leaf in inputs), path + output))
                break
    if len(found) != 1:
        raise ValueError(f"{where}: cannot identify the MLP (found {len(found)} candidates)")
    names, output_name = found[0]
    modules = dict(block_matrices(block))
    n = in_features(modules[output_name])
    inputs: list[tuple[str, nn.Module, int]] = []
    for name in names:
        copies = 2 if name.endswith("gate_up_proj") else 1  # fused [gate | up]
        if out_features(modules[name]) != copies * n:
            raise ValueError(
                f"{where}: {name} has {out_features(modules[name])} outputs, "
                f"expected {copies} x {n} channels"
            )
        inputs += [(name, modules[name], k * n) for k in range(copies)]
    return MlpChannels(
        num_channels=n, inputs=tuple(inputs), output=(output_name, modules[output_name])
    )
