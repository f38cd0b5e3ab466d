"""``models.csv``: one row per model, what was matched and what was not.

A row gives the model's family, method, level, parent and (for a matched
control) the model it matches; its held-out perplexity and its ratio to the
parent's, with the interval of the perplexity guard; its size and measured
sparsity; then the text's own quality on each prompt set
(``<promptset>_teacher_perplexity``, ``_distinct_2``, ``_empty_share``), so a
model and its matched control show what was matched (the held-out
perplexity) and what was not; and last whether (and why) a quality guard
flags it, with ``degradation``: ``clear`` when a guard's interval lies past
its limit, ``possible`` when only its point estimate does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from compfair.tables.flags import Flags
from compfair.tables.rows import ModelRow, columns, to_frame
from compfair.tables.specs import EVAL_METRICS

#: The fixed columns of models.csv (the quality columns go after ``sparsity``).
MODELS_COLUMNS = columns(ModelRow)
#: The quality measures models.csv gives beside the held-out perplexity, one column per
#: (prompt set, measure): ``<promptset>_<measure>``, the mean over the model's seeds.
MODELS_QUALITY = ("teacher_perplexity", "distinct_2", "empty_share")


def _quality_columns(quality: Mapping[str, Mapping[int, dict]]) -> list[tuple[str, str]]:
    """The (prompt set, measure) pairs of models.csv's quality columns, in order."""
    promptsets = sorted({p for by_seed in quality.values() for q in by_seed.values() for p in q})
    return [(p, m) for p in promptsets for m in MODELS_QUALITY]


def _quality_means(by_seed: Mapping[int, dict], pairs: list[tuple[str, str]]) -> list[float]:
    """Each pair's mean over the seeds (NaN where no seed has it)."""
    out = []
    for promptset, measure in pairs:
        found = [
            q[promptset][measure]
            for q in by_seed.values()
            if q.get(promptset, {}).get(measure) is not None
        ]
        out.append(float(np.mean(found)) if found else math.nan)
    return out


def _model_row(
    v: Mapping, by_model: Mapping[str, Sequence[Mapping[str, float]]], flags: Flags
) -> ModelRow:
    """The row of variant record ``v``; ``by_model``: model -> its evaluations (one per file)."""
    mine = by_model.get(v["model"], [])
    mean = {m: float(np.mean([e[m] for e in mine])) if mine else math.nan for m in EVAL_METRICS}
    parent_ppl = (
        float(np.mean([e["perplexity"] for e in by_model[v["parent"]]]))
        if v["parent"] and by_model.get(v["parent"])
        else math.nan
    )
    low, high = flags.perplexity_ratio.get(v["model"], (math.nan, math.nan))
    return ModelRow(
        model=v["model"],
        family=v["family"],
        method=v["method"],
        level=v["level"],
        parent=v["parent"],
        matches=v.get("matches"),
        perplexity=mean["perplexity"],
        perplexity_ratio=mean["perplexity"] / parent_ppl,
        perplexity_ratio_low=low,
        perplexity_ratio_high=high,
        n_parameters=mean["n_parameters"],
        n_prunable=mean["n_prunable"],
        sparsity=mean["sparsity"],
        flagged=v["model"] in flags,
        degradation=flags.degradation(v["model"]),
        flag_reasons="; ".join(map(str, flags.get(v["model"], []))),
    )


def models_table(
    variants: list[dict],
    evals: Mapping[tuple[int, str], Mapping[str, float]],
    flags: Flags,
    quality: Mapping[str, Mapping[int, dict]] | None = None,
) -> pd.DataFrame:
    """One :class:`~compfair.tables.rows.ModelRow` per variant record, in order, with the
    :data:`MODELS_QUALITY` of each prompt set after ``sparsity``.

    ``evals``: (seed, model) -> :func:`~compfair.tables.files.read_eval`; ``flags``:
    :func:`~compfair.tables.flags.flag_models`; ``quality``: model -> seed ->
    :func:`~compfair.tables.files.read_quality`.
    """
    quality = quality or {}
    by_model: dict[str, list[Mapping[str, float]]] = defaultdict(list)
    for (_seed, model), values in sorted(evals.items()):
        by_model[model].append(values)
    table = to_frame([_model_row(v, by_model, flags) for v in variants], ModelRow)
    extra = _quality_columns(quality)
    if not extra:
        return table
    means = pd.DataFrame.from_records(
        [_quality_means(quality.get(v["model"], {}), extra) for v in variants],
        columns=[f"{p}_{m}" for p, m in extra],
    )
    at = MODELS_COLUMNS.index("sparsity") + 1
    return pd.concat([table.iloc[:, :at], means, table.iloc[:, at:]], axis=1)
