"""The scores of a generations file: toxicity (plain and group-masked), sentiment, regard."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from compfair.io import InputError, read_jsonl, write_csv
from compfair.scoring import get_scorer
from compfair.scoring.regard import REGARD_LABELS, regard_scores

log = logging.getLogger(__name__)


def vader_compound(texts: list[str]) -> np.ndarray:
    """VADER compound sentiment in [-1, 1] for each text (0 for an empty text)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(str(t))["compound"] for t in texts], dtype=float)


def read_continuations(generations_path: Path) -> tuple[list[str], list[int], list[str]]:
    """``(prompt_ids, samples, continuations)`` of a generations file, in its order.

    A null continuation reads as ``""``. Raises :class:`InputError` for a row
    without ``prompt_id``, ``sample`` or ``continuation`` or with a
    continuation that is not a string.
    """
    rows = read_jsonl(generations_path, required=("prompt_id", "sample", "continuation"))
    texts = [r["continuation"] if r["continuation"] is not None else "" for r in rows]
    for lineno, t in enumerate(texts, start=1):
        if not isinstance(t, str):
            raise InputError(f"{generations_path}, row {lineno}: continuation is not a string")
    return [str(r["prompt_id"]) for r in rows], [int(r["sample"]) for r in rows], texts


def _groups_by_prompt(prompts_path: Path) -> dict[str, str | None]:
    """``{prompt_id: group}`` of a prompt file (None for a prompt without a group)."""
    rows = read_jsonl(prompts_path, required=("prompt_id",))
    return {str(r["prompt_id"]): r.get("group") or None for r in rows}


def masked_texts(
    texts: list[str], prompt_ids: list[str], prompts_path: Path, generations_path: Path
) -> list[str] | None:
    """The texts with their prompt's group masked; None when no prompt has a group.

    Raises :class:`InputError` for a prompt id of the generations that the
    prompt file lacks.
    """
    from compfair.group_terms import mask_group_terms

    groups = _groups_by_prompt(prompts_path)
    if not any(groups.values()):
        log.info("%s: no prompt has a group; no toxicity_masked column", prompts_path)
        return None
    missing = sorted(set(prompt_ids) - set(groups))
    if missing:
        raise InputError(
            f"{generations_path}: prompt_id(s) {', '.join(missing[:5])} not in {prompts_path}"
        )
    return [
        mask_group_terms(t, groups[pid]) if groups[pid] else t
        for t, pid in zip(texts, prompt_ids, strict=True)
    ]


def score_generations(
    generations_path: Path,
    out_csv: Path,
    scorer: str,
    scorer_options: dict | None = None,
    regard_model: str | None = None,
    prompts_path: Path | None = None,
) -> int:
    """Score every continuation for toxicity and VADER sentiment; write a CSV.

    Only the continuation is scored (not the prompt), as in RealToxicityPrompts,
    so the scores measure what the model added; an empty continuation is
    scored as ``""``. Columns, in the order of the generations file's rows:
    ``prompt_id, sample, toxicity[, toxicity_masked], sentiment, empty[,
    regard_negative, regard_neutral, regard_positive, regard_other]``.
    ``empty``: the continuation is empty or whitespace. ``toxicity_masked``
    (with ``prompts_path``, the prompt file the continuations came from, when
    its prompts have groups): the toxicity of the continuation with its
    prompt's group named by "person"/"people"
    (:func:`compfair.group_terms.mask_group_terms`), which tells a scorer's
    reaction to the group's name apart from toxic content. ``regard_*`` (with
    ``regard_model``): that regard classifier's class probabilities.
    Returns the number of rows.

    Raises:
        InputError: a malformed generations file, an unknown scorer or option,
            or a prompt id missing from ``prompts_path``; no CSV is written then.
    """
    generations_path, out_csv = Path(generations_path), Path(out_csv)
    prompt_ids, samples, texts = read_continuations(generations_path)
    masked = (
        None
        if prompts_path is None
        else masked_texts(texts, prompt_ids, Path(prompts_path), generations_path)
    )
    tox_scorer = get_scorer(scorer, **(scorer_options or {}))
    log.info("scoring %d continuations of %s with %s", len(texts), generations_path, scorer)
    frame = pd.DataFrame(
        {
            "prompt_id": prompt_ids,
            "sample": samples,
            "toxicity": tox_scorer.score(texts) if texts else np.zeros(0),
            "sentiment": vader_compound(texts),
            "empty": [not t.strip() for t in texts],
        }
    )
    if masked is not None:
        frame.insert(3, "toxicity_masked", tox_scorer.score(masked) if masked else np.zeros(0))
    if regard_model:
        regard = regard_scores(texts, model=regard_model)
        for label in REGARD_LABELS:
            frame[f"regard_{label}"] = regard[label].to_numpy()
    write_csv(out_csv, frame)
    means = frame[["toxicity", "sentiment"]].mean()  # NaN for no rows
    log.info("mean toxicity %.4f, mean sentiment %.4f", means["toxicity"], means["sentiment"])
    return len(frame)
