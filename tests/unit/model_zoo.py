"""Tiny random causal LMs of many families, built offline from configs, for tests.

Every model has hidden size 32, 4 attention heads of 8 and a 128-token
vocabulary; ``FAMILIES[name].build(n_layer)`` makes one with ``n_layer``
decoder blocks. Each :class:`Family` also records where its blocks are, the
names of its matrices and its attention layout, as
``tests/unit/test_architecture.py`` checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import transformers as tf
from transformers import AutoModelForCausalLM, PreTrainedModel

VOCAB = 128
LLAMA_NAMES = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
]
FUSED_NAMES = ["query_key_value", "dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"]
GPT2_NAMES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


def _llama_like(config_class: type, **extra: object) -> Callable[[int], PreTrainedModel]:
    def build(n_layer: int) -> PreTrainedModel:
        return AutoModelForCausalLM.from_config(
            config_class(
                vocab_size=VOCAB,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=n_layer,
                num_attention_heads=4,
                max_position_embeddings=64,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=0,
                **extra,
            )
        )

    return build


def _gpt2_like(config_class: type, **extra: object) -> Callable[[int], PreTrainedModel]:
    def build(n_layer: int) -> PreTrainedModel:
        return AutoModelForCausalLM.from_config(
            config_class(
                vocab_size=VOCAB,
                n_embd=32,
                n_layer=n_layer,
                n_head=4,
                n_positions=64,
                bos_token_id=1,
                eos_token_id=2,
                **extra,
            )
        )

    return build


def _hidden(
    config_class: type, layers_key: str, **extra: object
) -> Callable[[int], PreTrainedModel]:
    def build(n_layer: int) -> PreTrainedModel:
        return AutoModelForCausalLM.from_config(
            config_class(
                vocab_size=VOCAB,
                hidden_size=32,
                bos_token_id=1,
                eos_token_id=2,
                **{layers_key: n_layer},
                **extra,
            )
        )

    return build


@dataclass(frozen=True)
class Family:
    build: Callable[[int], PreTrainedModel]
    prefix: str
    names: list[str]
    heads: tuple[str, int, int]  # layout, num_key_value_heads, head_dim (num_heads is 4)


FAMILIES: dict[str, Family] = {
    "gpt2": Family(_gpt2_like(tf.GPT2Config), "transformer.h", GPT2_NAMES, ("blocked", 4, 8)),
    "gpt_bigcode_mqa": Family(
        _gpt2_like(tf.GPTBigCodeConfig, multi_query=True),
        "transformer.h",
        GPT2_NAMES,
        ("blocked", 1, 8),
    ),
    "gpt_bigcode_mha": Family(
        _gpt2_like(tf.GPTBigCodeConfig, multi_query=False),
        "transformer.h",
        GPT2_NAMES,
        ("grouped", 4, 8),
    ),
    "gptj": Family(
        _gpt2_like(tf.GPTJConfig, rotary_dim=4),
        "transformer.h",
        ["attn.k_proj", "attn.v_proj", "attn.q_proj", "attn.out_proj", "mlp.fc_in", "mlp.fc_out"],
        ("separate", 4, 8),
    ),
    "llama": Family(
        _llama_like(tf.LlamaConfig, num_key_value_heads=2),
        "model.layers",
        LLAMA_NAMES,
        ("separate", 2, 8),
    ),
    "qwen2": Family(
        _llama_like(tf.Qwen2Config, num_key_value_heads=2),
        "model.layers",
        LLAMA_NAMES,
        ("separate", 2, 8),
    ),
    "mistral": Family(
        _llama_like(tf.MistralConfig, num_key_value_heads=2),
        "model.layers",
        LLAMA_NAMES,
        ("separate", 2, 8),
    ),
    "gemma": Family(
        _llama_like(tf.GemmaConfig, num_key_value_heads=1, head_dim=8),
        "model.layers",
        LLAMA_NAMES,
        ("separate", 1, 8),
    ),
    "gemma2": Family(
        _llama_like(tf.Gemma2Config, num_key_value_heads=2, head_dim=8),
        "model.layers",
        LLAMA_NAMES,
        ("separate", 2, 8),
    ),
    "stablelm": Family(
        _llama_like(tf.StableLmConfig, num_key_value_heads=2),
        "model.layers",
        LLAMA_NAMES,
        ("separate", 2, 8),
    ),
    "phi": Family(
        _llama_like(tf.PhiConfig),
        "model.layers",
        [
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.dense",
            "mlp.fc1",
            "mlp.fc2",
        ],
        ("separate", 4, 8),
    ),
    "phi3": Family(
        _llama_like(tf.Phi3Config, num_key_value_heads=2),
        "model.layers",
        ["self_attn.o_proj", "self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.down_proj"],
        ("blocked", 2, 8),
    ),
    "gpt_neox": Family(
        _hidden(
            tf.GPTNeoXConfig,
            "num_hidden_layers",
            intermediate_size=64,
            num_attention_heads=4,
            max_position_embeddings=64,
        ),
        "gpt_neox.layers",
        ["attention." + n if i < 2 else n for i, n in enumerate(FUSED_NAMES)],
        ("grouped", 4, 8),
    ),
    "opt": Family(
        _hidden(
            tf.OPTConfig,
            "num_hidden_layers",
            ffn_dim=64,
            num_attention_heads=4,
            word_embed_proj_dim=32,
            max_position_embeddings=64,
        ),
        "model.decoder.layers",
        [
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.q_proj",
            "self_attn.out_proj",
            "fc1",
            "fc2",
        ],
        ("separate", 4, 8),
    ),
    "bloom": Family(
        _hidden(tf.BloomConfig, "n_layer", n_head=4),
        "transformer.h",
        ["self_attention." + n if i < 2 else n for i, n in enumerate(FUSED_NAMES)],
        ("grouped", 4, 8),
    ),
    "falcon_mqa": Family(
        _hidden(tf.FalconConfig, "num_hidden_layers", num_attention_heads=4),
        "transformer.h",
        ["self_attention." + n if i < 2 else n for i, n in enumerate(FUSED_NAMES)],
        ("grouped", 1, 8),
    ),
    "falcon_new": Family(
        _hidden(
            tf.FalconConfig,
            "num_hidden_layers",
            num_attention_heads=4,
            num_kv_heads=2,
            new_decoder_architecture=True,
        ),
        "transformer.h",
        ["self_attention." + n if i < 2 else n for i, n in enumerate(FUSED_NAMES)],
        ("grouped", 2, 8),
    ),
}


def make(family: str, n_layer: int = 2, seed: int = 0) -> PreTrainedModel:
    """A tiny random model of ``family`` (a key of :data:`FAMILIES`) in eval mode, seeded."""
    import torch

    torch.manual_seed(seed)
    return FAMILIES[family].build(n_layer).eval()
