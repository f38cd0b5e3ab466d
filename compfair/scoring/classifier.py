"""A Hugging Face sequence classifier that gives every label's probability.

The machinery shared by the ``hf_classifier`` scorer and
:func:`compfair.scoring.regard.regard_scores`. torch and transformers are
imported when a classifier is built, not when this module is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from compfair.io import InputError


class SequenceClassifier:
    """A loaded classifier: label names, batching, truncation, probabilities.

    Loading failures are an :class:`InputError` naming ``what`` (the scorer
    or measure it serves). GPT-2-style tokenizers without a pad token pad
    with their end-of-text token; texts are truncated to the shortest of
    ``max_length`` and the model's and tokenizer's limits. Single-label
    models use the softmax, multi-label models
    (``problem_type == "multi_label_classification"``) the sigmoid.
    """

    def __init__(
        self,
        model: str | Path,
        batch_size: int = 32,
        max_length: int = 512,
        device: str | None = None,
        what: str = "hf_classifier",
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.what = what
        self.model_name = str(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.model_name)
        except OSError as exc:
            raise InputError(f"{what}: cannot load classifier {self.model_name!r}: {exc}") from exc
        #: label names in output order
        self.labels = [
            str(self.model.config.id2label[i])
            for i in sorted(int(k) for k in self.model.config.id2label)
        ]
        self.multi_label = self.model.config.problem_type == "multi_label_classification"
        self.batch_size = int(batch_size)
        self._ensure_padding()
        self.max_length = _max_length(int(max_length), self.model.config, self.tokenizer)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()

    def _ensure_padding(self) -> None:
        """Give a tokenizer without a pad token its end-of-text token; InputError if it has none."""
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise InputError(f"{self.what}: {self.model_name!r} tokenizer cannot pad")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if getattr(self.model.config, "pad_token_id", None) is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def label_index(self, label: str) -> int:
        """Column of ``label`` (exact match first, then case-insensitive); InputError if absent."""
        if label in self.labels:
            return self.labels.index(label)
        lower = [lab.lower() for lab in self.labels]
        if str(label).lower() in lower:
            return lower.index(str(label).lower())
        raise InputError(
            f"{self.what}: label {label!r} is not a label of {self.model_name!r}; "
            f"its labels are: {', '.join(self.labels)}"
        )

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Label probabilities, shape ``(len(texts), len(self.labels))``."""
        import torch

        # An empty string tokenises to zero tokens for GPT-2-style tokenizers;
        # a single space keeps the row scoreable without adding content.
        texts = [str(t) if str(t) else " " for t in texts]
        out: list[np.ndarray] = []
        with torch.no_grad():
            for i in tqdm(
                range(0, len(texts), self.batch_size),
                desc=self.what,
                unit="batch",
                disable=len(texts) <= self.batch_size,
            ):
                enc = self.tokenizer(
                    texts[i : i + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**enc).logits.float()
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, -1)
                out.append(probs.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))


def _max_length(requested: int, config: Any, tokenizer: Any) -> int:
    """The shortest of ``requested``, the model's position limit and the tokenizer's limit."""
    limits = [requested]
    for attr in ("max_position_embeddings", "n_positions"):
        if getattr(config, attr, None):
            limits.append(int(getattr(config, attr)))
    if getattr(tokenizer, "model_max_length", None):
        # Tokenizers without a limit report a huge sentinel (about 1e30).
        limits.append(int(min(tokenizer.model_max_length, 1 << 30)))
    return min(limits)
