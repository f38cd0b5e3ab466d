"""Readers of the per-job result files the tables are built from.

Each reader checks what it reads and raises :class:`InputError` naming the
file (and line, where there is one): a scores file that misses rows, a prompt
id that is not in the prompt set, a value that is not a number.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compfair.intrinsic.tables import COLUMNS as INTRINSIC_COLUMNS
from compfair.intrinsic.tables import ITEM_COLUMNS
from compfair.io import InputError, read_json, read_jsonl
from compfair.quality import QUALITY_METRICS, TEXT_UNITS, Units
from compfair.tables.specs import EVAL_METRICS

#: Quality keys a report may lack: their rows are then left out.
OPTIONAL_QUALITY = ("mean_words", "gender_polarity_male_share", "gender_polarity_female_share")


def read_prompts(path: Path) -> pd.DataFrame:
    """``prompt_id, domain, group`` of a prompts file (ids unique, at least one prompt)."""
    rows = read_jsonl(path, required=("prompt_id",))
    frame = pd.DataFrame(
        {
            "prompt_id": [str(r["prompt_id"]) for r in rows],
            "domain": [r.get("domain") for r in rows],
            "group": [r.get("group") for r in rows],
        }
    )
    dup = frame["prompt_id"][frame["prompt_id"].duplicated()]
    if len(dup):
        raise InputError(f"{path}: duplicate prompt_id {dup.iloc[0]!r}")
    if frame.empty:
        raise InputError(f"{path}: no prompts")
    return frame


def read_scores(path: Path) -> pd.DataFrame:
    """A scores CSV: ``prompt_id, sample, toxicity, sentiment`` (and ``empty``, ``regard_*``)."""
    try:
        frame = pd.read_csv(path, dtype={"prompt_id": str}, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    missing = [c for c in ("prompt_id", "sample", "toxicity", "sentiment") if c not in frame]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    numeric = [
        "toxicity",
        "sentiment",
        *(c for c in frame.columns if c.startswith(("regard_", "toxicity_"))),
    ]
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
            raise InputError(f"{path}, line {line}: {col} is missing or not a number")
        frame[col] = values.astype(float)
    if "empty" in frame:
        frame["empty"] = frame["empty"].astype(str).str.lower().isin(["true", "1"])
    if frame.empty:
        raise InputError(f"{path}: no score rows")
    return frame


def join_prompts(
    scores: pd.DataFrame,
    prompts: pd.DataFrame,
    score_path: Path,
    prompt_path: Path,
    samples: int | None,
) -> pd.DataFrame:
    """Scores joined with their prompts' domain and group; every prompt has ``samples`` rows.

    A prompt id the prompt set lacks, a prompt without scores, or a prompt
    with another number of samples than ``samples`` (K of the prompt set;
    None: only equal counts) raises :class:`InputError` naming both files.
    """
    unknown = sorted(set(scores["prompt_id"]) - set(prompts["prompt_id"]))
    if unknown:
        raise InputError(
            f"{score_path}: {len(unknown)} prompt_id(s) not in {prompt_path}, e.g. {unknown[0]!r}"
        )
    absent = sorted(set(prompts["prompt_id"]) - set(scores["prompt_id"]))
    if absent:
        raise InputError(
            f"{score_path}: no scores for {len(absent)} prompt(s) of {prompt_path}, e.g. {absent[0]!r}"
        )
    counts = scores.groupby("prompt_id").size()
    expected = samples if samples is not None else int(counts.max())
    wrong = counts[counts != expected]
    if len(wrong):
        raise InputError(
            f"{score_path}: prompt {wrong.index[0]!r} has {int(wrong.iloc[0])} scored samples, "
            f"expected {expected} (K of the prompt set in {prompt_path}); {len(wrong)} prompt(s) differ"
        )
    return scores.merge(prompts, on="prompt_id", how="left", validate="many_to_one")


def read_object(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def number(value: Any, path: Path, key: str, allow_null: bool = False) -> float:
    if value is None and allow_null:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{path}: {key!r} must be a number, got {value!r}")
    return float(value)


def read_eval(path: Path) -> dict[str, float]:
    """The evaluation metrics (:data:`EVAL_METRICS`) of one model."""
    data = read_object(path)
    missing = [m for m in EVAL_METRICS if m not in data]
    if missing:
        raise InputError(f"{path}: missing key {missing[0]!r}")
    return {m: number(data[m], path, m) for m in EVAL_METRICS}


def read_quality(path: Path) -> dict[str, dict[str, float]]:
    """Prompt set -> quality metrics (:data:`compfair.quality.QUALITY_METRICS`) of one model."""
    blocks = read_object(path).get("promptsets")
    if not isinstance(blocks, dict):
        raise InputError(f"{path}: expected an object 'promptsets'")
    out = {}
    for promptset, block in sorted(blocks.items()):
        if not isinstance(block, dict):
            raise InputError(f"{path}: promptsets.{promptset} is not an object")
        values = {}
        for metric in QUALITY_METRICS:
            if metric not in block:
                if metric in OPTIONAL_QUALITY:
                    continue
                raise InputError(f"{path}: promptsets.{promptset} lacks {metric!r}")
            values[metric] = number(
                block[metric], path, f"promptsets.{promptset}.{metric}", allow_null=True
            )
        out[promptset] = values
    return out


def _number_list(value: Any, path: Path, key: str, n: int | None, nulls: bool = False) -> list:
    """A list of ``n`` numbers (None where ``nulls`` allows), or InputError naming ``key``."""
    if not isinstance(value, list) or (n is not None and len(value) != n):
        count = "" if n is None else f" of {n}"
        raise InputError(f"{path}: {key!r} must be a list{count} numbers")
    return [
        None if v is None and nulls else number(v, path, f"{key}[{i}]") for i, v in enumerate(value)
    ]


def _promptset_units(block: dict[str, Any], path: Path, where: str) -> dict[str, Units]:
    """The guard units of one prompt set's ``units`` object (see :func:`read_quality_units`)."""
    raw = block["units"]
    ids = raw.get("prompt_id") if isinstance(raw, dict) else None
    if not isinstance(ids, list):
        raise InputError(f"{path}: {where}.units lacks a list 'prompt_id'")
    ids = [str(i) for i in ids]
    out = {}
    for metric in TEXT_UNITS:
        if metric in raw:
            values = _number_list(raw[metric], path, f"{where}.units.{metric}", len(ids))
            out[metric] = Units(tuple(ids), np.array(values, dtype=float))
    if "teacher_nll" in raw and "teacher_tokens" in raw:
        nll = _number_list(raw["teacher_nll"], path, f"{where}.units.teacher_nll", len(ids), True)
        tokens = _number_list(
            raw["teacher_tokens"], path, f"{where}.units.teacher_tokens", len(ids), True
        )
        scored = [i for i, (a, b) in enumerate(zip(nll, tokens, strict=True)) if None not in (a, b)]
        out["teacher_perplexity"] = Units(
            tuple(ids[i] for i in scored),
            np.array([nll[i] for i in scored], dtype=float),
            np.array([tokens[i] for i in scored], dtype=float),
        )
    return out


def read_quality_units(path: Path) -> dict[str, dict[str, Units]]:
    """Prompt set -> metric -> the per-prompt values its quality guard resamples.

    From each block's ``units`` (:func:`compfair.quality.quality_report`):
    :data:`compfair.quality.TEXT_UNITS` and ``teacher_perplexity`` (the
    prompts the teacher scored, with their summed NLL and tokens). A block
    without ``units`` (a report of an older version) gives no units: its
    guards have no interval.
    """
    blocks = read_object(path).get("promptsets")
    if not isinstance(blocks, dict):
        raise InputError(f"{path}: expected an object 'promptsets'")
    return {
        promptset: _promptset_units(block, path, f"promptsets.{promptset}")
        if isinstance(block, dict) and "units" in block
        else {}
        for promptset, block in sorted(blocks.items())
    }


def read_eval_units(path: Path) -> Units | None:
    """The held-out windows of an evaluation file as guard units, None without them.

    ``window_nll`` and ``window_tokens`` (:func:`compfair.perplexity.evaluate_model`)
    give each window's summed NLL and predicted tokens; a window is named by its
    first token's position and its length, so that only the same windows pair up
    with the parent's.
    """
    data = read_object(path)
    if "window_nll" not in data or "window_tokens" not in data:
        return None
    nll = _number_list(data["window_nll"], path, "window_nll", None)
    tokens = _number_list(data["window_tokens"], path, "window_tokens", len(nll))
    lengths = [int(t) + 1 for t in tokens]  # a window of L tokens predicts L - 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    ids = tuple(f"{start}+{length}" for start, length in zip(starts, lengths, strict=True))
    return Units(ids, np.array(nll, dtype=float), np.array(tokens, dtype=float))


def read_intrinsic(path: Path) -> pd.DataFrame:
    """A benchmark table (point values): :data:`INTRINSIC_COLUMNS`, one row per
    (promptset, group, metric)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    missing = [c for c in INTRINSIC_COLUMNS if c not in frame]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    values = pd.to_numeric(frame["value"].replace("", np.nan), errors="coerce")
    if values.isna().any():
        line = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
        raise InputError(f"{path}, line {line}: value is missing or not a number")
    frame["value"] = values.astype(float)
    dup = frame.duplicated(["promptset", "group", "metric"])
    if dup.any():
        line = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise InputError(f"{path}, line {line}: repeats a (promptset, group, metric)")
    return frame[list(INTRINSIC_COLUMNS)]


def read_items(path: Path) -> pd.DataFrame:
    """An intrinsic benchmark's per-item values: :data:`ITEM_COLUMNS`, one row per (item, metric)."""
    try:
        frame = pd.read_csv(path, dtype={"item_id": str, "group": str}, keep_default_na=False)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    missing = [c for c in ITEM_COLUMNS if c not in frame]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    values = pd.to_numeric(frame["value"], errors="coerce")
    if values.isna().any():
        line = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
        raise InputError(f"{path}, line {line}: value is missing or not a number")
    dup = frame.duplicated(["benchmark", "item_id", "metric"])
    if dup.any():
        line = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise InputError(f"{path}, line {line}: repeats a (benchmark, item_id, metric)")
    return frame.assign(value=values.astype(float))[list(ITEM_COLUMNS)]
