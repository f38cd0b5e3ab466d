"""Regard (Sheng et al. 2019): how a text regards the person or group it is about."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from compfair.io import InputError
from compfair.scoring.classifier import SequenceClassifier

#: Regard classes, the columns of :func:`regard_scores`.
REGARD_LABELS = ("negative", "neutral", "positive", "other")
_REGARD_ALIASES = {"neg": "negative", "pos": "positive"}


def regard_scores(
    texts: list[str],
    model: str | Path = "sasha/regardv3",
    batch_size: int = 32,
    device: str | None = None,
) -> pd.DataFrame:
    """Regard class probabilities of each text from a Hugging Face classifier.

    ``model`` is a hub id (e.g. ``sasha/regardv3``, the classifier of the
    ``evaluate`` library's regard measurement) or a local folder; its
    ``id2label`` must name the four classes ``negative, neutral, positive,
    other`` (any case; ``neg``/``pos`` accepted). Returns a frame with those
    four columns, one row a text, each row summing to one for a single-label
    (softmax) model.

    Raises:
        InputError: the model cannot be loaded, or lacks one of the classes.
    """
    clf = SequenceClassifier(model, batch_size=batch_size, device=device, what="regard")
    names = [lab.lower() for lab in clf.labels]
    names = [_REGARD_ALIASES.get(n, n) for n in names]
    missing = [lab for lab in REGARD_LABELS if lab not in names]
    if missing:
        raise InputError(
            f"regard: classifier {clf.model_name!r} lacks label(s) {', '.join(missing)}; "
            f"its labels are: {', '.join(clf.labels)}"
        )
    probs = clf.probabilities([str(t) for t in texts])
    return pd.DataFrame({lab: probs[:, names.index(lab)] for lab in REGARD_LABELS})
