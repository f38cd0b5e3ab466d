"""What the tests build offline: tiny random models and tokenizers, likelihoods by hand, configs.

- **Causal LMs of many families** (:data:`FAMILIES`): ``tiny_lm(family, n_layer, seed,
  **config)`` as constructed (training mode), :func:`make` the same in eval mode. By default
  every model has hidden size 32, 4 attention heads of 8 and a 128-token vocabulary
  (:data:`VOCAB`); keyword arguments override the config (a wider vocabulary, two heads).
  Each :class:`Family` also records where its blocks are, the names of its matrices and its
  attention layout, as ``tests/unit/test_architecture.py`` checks them.
  :func:`make_tiny_gpt2` and :func:`make_tiny_llama` are the unit fixtures' 100-token,
  4-layer shapes; :func:`tiny_moe` a mixture-of-experts Qwen2.
- **The tiny tokenizer** (:func:`tiny_tokenizer`, one word per id of :data:`VOCAB`) and
  :func:`save_tiny_folder`, a model folder with it.
- **Random classifiers** for the scorers: a Detoxify checkpoint and a regard classifier (tiny
  BERTs), a GPT-2 sequence classifier. The numbers mean nothing, the code path runs.
- **Log-likelihoods by hand** (:func:`token_log_probs`, :func:`continuation_nll_by_hand`):
  one unpadded float64 forward pass per sequence, the reference the batched code must match.
- **Configs layered** as Snakemake layers ``--configfile`` (:func:`layered`,
  :func:`layered_files`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers as tf
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from compfair.models import gpt2_tokenizer

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- causal LMs

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

#: ``build(n_layer, **config)``: a model of ``n_layer`` blocks, ``config`` over the defaults.
Builder = Callable[..., PreTrainedModel]


def _llama_like(config_class: type, **extra: object) -> Builder:
    def build(n_layer: int, **config: object) -> PreTrainedModel:
        defaults = {
            "vocab_size": VOCAB,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": n_layer,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        }
        return AutoModelForCausalLM.from_config(config_class(**{**defaults, **extra, **config}))

    return build


def _gpt2_like(config_class: type, **extra: object) -> Builder:
    def build(n_layer: int, **config: object) -> PreTrainedModel:
        defaults = {
            "vocab_size": VOCAB,
            "n_embd": 32,
            "n_layer": n_layer,
            "n_head": 4,
            "n_positions": 64,
            "bos_token_id": 1,
            "eos_token_id": 2,
        }
        return AutoModelForCausalLM.from_config(config_class(**{**defaults, **extra, **config}))

    return build


def _hidden(config_class: type, layers_key: str, **extra: object) -> Builder:
    def build(n_layer: int, **config: object) -> PreTrainedModel:
        defaults = {
            "vocab_size": VOCAB,
            "hidden_size": 32,
            "bos_token_id": 1,
            "eos_token_id": 2,
            layers_key: n_layer,
        }
        return AutoModelForCausalLM.from_config(config_class(**{**defaults, **extra, **config}))

    return build


@dataclass(frozen=True)
class Family:
    build: Builder
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


def tiny_lm(family: str, n_layer: int = 2, seed: int = 0, **config: Any) -> PreTrainedModel:
    """A tiny random model of ``family`` (a key of :data:`FAMILIES`) as constructed (training
    mode), its weights drawn after ``torch.manual_seed(seed)``; ``config`` overrides the
    family's config keys (``pad_token_id=None`` leaves the embedding's row 0 random)."""
    torch.manual_seed(seed)
    return FAMILIES[family].build(n_layer, **config)


def make(family: str, n_layer: int = 2, seed: int = 0, **config: Any) -> PreTrainedModel:
    """:func:`tiny_lm` in eval mode."""
    return tiny_lm(family, n_layer, seed, **config).eval()


def make_tiny_gpt2(vocab_size: int = 100, n_layer: int = 4, seed: int = 0) -> GPT2LMHeadModel:
    """A random 32-wide GPT-2 (Conv1D layers, tied LM head), BOS = EOS = the last token."""
    last = vocab_size - 1
    return tiny_lm(
        "gpt2", n_layer, seed, vocab_size=vocab_size, bos_token_id=last, eos_token_id=last
    )


def make_tiny_llama(
    vocab_size: int = 100, n_layer: int = 4, seed: int = 0, tied: bool = False
) -> LlamaForCausalLM:
    """A random 32-wide Llama (nn.Linear layers, grouped-query attention), no pad token."""
    return tiny_lm(
        "llama",
        n_layer,
        seed,
        vocab_size=vocab_size,
        pad_token_id=None,
        tie_word_embeddings=tied,
    )


def tiny_moe(seed: int = 0) -> PreTrainedModel:
    """A random 2-layer Qwen2-MoE (4 experts of width 16, 2 per token, a shared expert of 48)."""
    torch.manual_seed(seed)
    config = tf.Qwen2MoeConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
    )
    return AutoModelForCausalLM.from_config(config)


# --------------------------------------------------------------------------- the tiny tokenizer


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """One word per id of :data:`VOCAB`, split on whitespace: ``<pad> <bos> <eos> <unk> w4 ..
    w127`` (ids 0 to 127). Fast to build, save and load."""
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3}
    vocab.update({f"w{i}": i for i in range(4, VOCAB)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
    )


def save_tiny_folder(model: PreTrainedModel, folder: Path) -> Path:
    """Save ``model`` with :func:`tiny_tokenizer` (a plain Hugging Face folder)."""
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- log-likelihoods by hand


def float64_model(model_dir: Path) -> PreTrainedModel:
    """The model of ``model_dir`` in float64, eval mode."""
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()


def token_log_probs(model: torch.nn.Module, ids: Sequence[int], start: int = 1) -> np.ndarray:
    """``log p(ids[t] | ids[:t])`` for ``t >= start``, shape ``(len(ids) - start,)``, float64,
    from one unpadded forward pass of ``ids`` (logits cast to float64 before the softmax)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([list(ids)])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return np.array([float(logp[t - 1, ids[t]]) for t in range(start, len(ids))])


def continuation_nll_by_hand(model_dir: Path, rows: list[dict]) -> tuple[float, int]:
    """Summed NLL of the continuation tokens of ``rows`` and their number, under the model of
    ``model_dir`` in float64: each row's prompt (BOS when it encodes to nothing), then its
    continuation, one unpadded pass per row. Blank continuations are left out."""
    model = float64_model(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    nll, count = 0.0, 0
    for row in rows:
        if not row["continuation"].strip():
            continue
        head = tok(row["prompt"])["input_ids"] or [tok.bos_token_id]
        cont = tok(row["continuation"], add_special_tokens=False)["input_ids"]
        for value in token_log_probs(model, head + cont, start=len(head)):
            nll -= float(value)
            count += 1
    return nll, count


# --------------------------------------------------------------------------- layered configs


def layered(*configs: Mapping[str, Any]) -> dict[str, Any]:
    """``configs`` layered in order as Snakemake layers config files: nested mappings are
    updated key by key, anything else (lists too) is replaced. Nulls stay (the workflow's
    ``drop_removed`` takes them out)."""

    def update(base: dict, new: Mapping) -> dict:
        for k, v in new.items():
            base[k] = (
                update(dict(base.get(k, {})), v)
                if isinstance(v, Mapping) and isinstance(base.get(k), Mapping)
                else v
            )
        return base

    out: dict[str, Any] = {}
    for config in configs:
        out = update(out, config)
    return out


def layered_files(*names: str) -> dict[str, Any]:
    """The YAML files ``names`` (paths relative to the repository) layered in order."""
    return layered(*(yaml.safe_load((REPO / name).read_text()) for name in names))


# --------------------------------------------------------------------------- random classifiers

#: A BERT vocabulary small enough to build in milliseconds.
BERT_WORDS = "[PAD] [UNK] [CLS] [SEP] [MASK] you are nice awful the a".split()


def _tiny_bert(
    folder: Path, num_labels: int, seed: int, **config: object
) -> BertForSequenceClassification:
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(BERT_WORDS) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    bert = BertConfig(
        vocab_size=len(BERT_WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=num_labels,
        **config,
    )
    bert.save_pretrained(folder)
    torch.manual_seed(seed)
    return BertForSequenceClassification(bert).eval()


#: Detoxify's "original" classes, in its checkpoint's order (detoxify renames toxic -> toxicity).
DETOXIFY_ORIGINAL_CLASSES = [
    "toxic",
    "severe_toxic",
    "obscene",
    "threat",
    "insult",
    "identity_hate",
]


def build_random_detoxify_checkpoint(
    out_dir: Path, classes: list[str] | None = None, seed: int = 0
) -> tuple[Path, Path, BertForSequenceClassification]:
    """A Detoxify-format checkpoint of a tiny random BERT, built offline.

    Writes ``out_dir/bert`` (a BERT tokenizer with a 9-word vocabulary and
    the model config) and ``out_dir/tiny.ckpt`` (``{"config": {"arch":
    {"args": ...}, "dataset": {"args": {"classes": ...}}}, "state_dict"}``,
    the layout of Detoxify's released checkpoints). ``model_type`` in the
    checkpoint names the local folder: detoxify 0.5 reads the base config by
    that name even when given ``huggingface_config_path``, so a hub id there
    would need the hub. Returns ``(checkpoint, folder, model)``.
    """
    classes = list(DETOXIFY_ORIGINAL_CLASSES if classes is None else classes)
    folder = out_dir / "bert"
    model = _tiny_bert(folder, len(classes), seed)
    args = {
        "model_type": str(folder),
        "model_name": "BertForSequenceClassification",
        "tokenizer_name": "BertTokenizer",
        "num_classes": len(classes),
    }
    checkpoint = {
        "config": {"arch": {"args": args}, "dataset": {"args": {"classes": classes}}},
        "state_dict": model.state_dict(),
    }
    torch.save(checkpoint, out_dir / "tiny.ckpt")
    return out_dir / "tiny.ckpt", folder, model


def build_random_regard_classifier(out_dir: Path, seed: int = 0) -> Path:
    """A folder with a tiny random BERT regard classifier (labels negative, neutral, positive, other)."""
    labels = ["negative", "neutral", "positive", "other"]
    model = _tiny_bert(
        out_dir,
        len(labels),
        seed,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model.save_pretrained(out_dir)
    return out_dir


def build_random_gpt2_classifier(folder: Path, labels: list[str], seed: int = 0) -> Path:
    """A folder with a tiny random 1-layer GPT-2 sequence classifier (16 wide, ``labels`` in
    order) and GPT-2's real tokenizer."""
    tokenizer = gpt2_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=16,
        n_layer=1,
        n_head=2,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        pad_token_id=tokenizer.eos_token_id,
    )
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
