"""Models the tests build offline: a Detoxify checkpoint and a regard classifier with random weights.

They exercise the paper preset's scorers (Detoxify, a regard classifier) without the hub:
the numbers mean nothing, the code path runs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

#: A BERT vocabulary small enough to build in milliseconds.
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "nice", "awful", "the", "a"]


def _tiny_bert(
    folder: Path, num_labels: int, seed: int, **config: object
) -> BertForSequenceClassification:
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    bert = BertConfig(
        vocab_size=len(VOCAB),
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
