"""``profanity_check``: alt-profanity-check's TF-IDF + linear model, the offline default."""

from __future__ import annotations

import numpy as np

from compfair.scoring import ToxicityScorer, check_probs, register_scorer


@register_scorer("profanity_check")
class ProfanityCheckScorer(ToxicityScorer):
    """alt-profanity-check's ``predict_prob``: offline, fast, profanity-centred.

    Misses threats without swear words; identity words alone score high
    ("gay" 0.98; :mod:`compfair.audit`).
    """

    def __init__(self, batch_size: int = 4096) -> None:
        self.batch_size = int(batch_size)

    def score(self, texts: list[str]) -> np.ndarray:
        from profanity_check import predict_prob  # imports scikit-learn

        texts = [str(t) for t in texts]
        parts = [
            np.asarray(predict_prob(texts[i : i + self.batch_size]), dtype=float)
            for i in range(0, len(texts), self.batch_size)
        ]
        probs = np.concatenate(parts) if parts else np.zeros(0)
        return check_probs(probs, len(texts), self.name)
