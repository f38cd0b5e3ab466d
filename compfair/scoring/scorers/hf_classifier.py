"""``hf_classifier``: the probability of one label of any Hugging Face sequence classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compfair.scoring import ToxicityScorer, check_probs, register_scorer
from compfair.scoring.classifier import SequenceClassifier


@register_scorer("hf_classifier")
class HFClassifierScorer(ToxicityScorer):
    """Probability of one label of a Hugging Face sequence classifier.

    ``model`` is a local folder or hub id; ``toxic_label`` the label name as
    it appears in ``config.id2label`` (exact match first, then
    case-insensitive). Single-label models use the softmax, multi-label models
    (``problem_type == "multi_label_classification"``) the sigmoid.
    """

    uses_gpu = True

    def __init__(
        self,
        model: str | Path,
        toxic_label: str = "toxic",
        batch_size: int = 32,
        max_length: int = 512,
        device: str | None = None,
    ) -> None:
        self.classifier = SequenceClassifier(model, batch_size, max_length, device, self.name)
        self.label_index = self.classifier.label_index(toxic_label)

    def score(self, texts: list[str]) -> np.ndarray:
        probs = self.classifier.probabilities(list(texts))[:, self.label_index]
        return check_probs(probs, len(texts), self.name)
