"""A prompt set's metrics from per-prompt values, with intervals: marginal and paired.

Prompts are the sampling unit. A (seed, model, prompt set) is reduced to one
row per prompt (:func:`compfair.tables.prompts.per_prompt_statistics`); every metric
is a statistic over a *unit set* of those prompts (the whole prompt set, or
one group of the bias prompts) of one per-prompt column. With several seeds a
value is the mean over seeds of the per-seed statistic, and an interval
resamples prompts keeping all seeds' values of a drawn prompt.

:func:`marginal_rows` gives each metric with its bootstrap interval;
:func:`paired_rows` the difference of each metric between a model and its
parent over the prompts both have a value for, with a paired bootstrap
interval (the same resampled prompts for both models), so that the
prompt-to-prompt variation the two share cancels.

Metrics over non-empty continuations only (``*_nonempty``) leave out the
prompts whose K samples are all empty, so a model that says nothing does not
look harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from compfair.metrics import (
    Bootstrap,
    bootstrap_ci,
    corrected_disparity,
    corrected_disparity_test,
    group_disparity_ci,
    is_constant,
    no_interval_reason,
    note_of,
    paired_difference_test,
)
from compfair.tables.rows import Estimate, Key, Paired, PairedRows, Rows
from compfair.tables.specs import (
    CORRECTED_DISPARITIES,
    DISPARITY_METRICS,
    GROUP_SPECS,
    PROMPTSET_SPECS,
    Spec,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitSet:
    """Prompts a block of metrics is computed over: the prompt set, or one group of it."""

    group: str  # "" for the whole prompt set
    index: np.ndarray  # positions in the (prompt_id-sorted) per-prompt frames
    specs: tuple[Spec, ...]


def stack(frames: list[pd.DataFrame], column: str) -> np.ndarray:
    """Per-prompt values of several seeds as (n_seeds, n_prompts), prompts in the same order."""
    return np.stack([f[column].to_numpy(dtype=float) for f in frames])


def seed_mean(statistic: Callable[..., Any], values: np.ndarray) -> float:
    """The statistic of each seed's row, averaged over seeds."""
    return float(np.mean([statistic(row) for row in values]))


def _groups(frame: pd.DataFrame, promptset: str, source: str) -> dict[tuple[str, str], np.ndarray]:
    """(domain, group) -> positions of its prompts; prompts without a group are left out."""
    has_group = frame["group"].notna().to_numpy()
    if not has_group.any():
        return {}
    if not has_group.all():
        log.warning(
            "%s: %d prompt(s) without a group are left out of the group metrics",
            source,
            int((~has_group).sum()),
        )
    labels = frame.loc[has_group, ["group"]].assign(
        domain=frame.loc[has_group, "domain"].fillna(promptset)
    )
    positions = np.flatnonzero(has_group)
    return {
        key: positions[idx]
        for key, idx in sorted(labels.groupby(["domain", "group"], sort=True).indices.items())
    }


def unit_sets(frame: pd.DataFrame, promptset: str, source: str) -> list[UnitSet]:
    """The whole prompt set, then each of its groups (sorted by domain and group)."""
    sets = [UnitSet("", np.arange(len(frame)), PROMPTSET_SPECS)]
    sets += [
        UnitSet(group, idx, GROUP_SPECS)
        for (_, group), idx in _groups(frame, promptset, source).items()
    ]
    return sets


def _finite_columns(*arrays: np.ndarray) -> np.ndarray:
    """Prompts (columns) with a value in every seed of every array."""
    keep = np.ones(arrays[0].shape[1], dtype=bool)
    for array in arrays:
        keep &= np.isfinite(array).all(axis=0)
    return keep


def marginal_rows(
    frames: list[pd.DataFrame], promptset: str, sets: list[UnitSet], boot: Bootstrap, model: str
) -> Rows:
    """Every metric of every unit set, with its bootstrap interval over prompts."""
    rows: Rows = {}
    for unit in sets:
        for spec in unit.specs:
            if spec.column not in frames[0].columns:
                continue
            values = stack(frames, spec.column)[:, unit.index]
            values = values[:, _finite_columns(values)]
            if values.shape[1] == 0:
                continue
            key = Key(promptset, unit.group, spec.metric)
            low, high = bootstrap_ci(values, spec.statistic, **boot.kwargs(model, *key.parts()))
            value = seed_mean(spec.statistic, values)
            rows[key] = Estimate(value, low, high, note_of(values, boot))
    return rows


def paired_rows(
    frames: list[pd.DataFrame],
    parent_frames: list[pd.DataFrame],
    promptset: str,
    sets: list[UnitSet],
    boot: Bootstrap,
    model: str,
) -> PairedRows:
    """Model minus parent for every metric, over the prompts both have values for.

    ``parent_frames`` must hold the same prompts in the same order as
    ``frames`` (one frame per shared seed). The values are computed on the
    shared prompts, so for the ``*_nonempty`` metrics they can differ from the
    marginal rows.
    """
    rows: PairedRows = {}
    for unit in sets:
        for spec in unit.specs:
            if spec.column not in frames[0].columns or spec.column not in parent_frames[0].columns:
                continue
            a = stack(frames, spec.column)[:, unit.index]
            b = stack(parent_frames, spec.column)[:, unit.index]
            keep = _finite_columns(a, b)
            if not keep.any():
                continue
            a, b = a[:, keep], b[:, keep]
            key = Key(promptset, unit.group, spec.metric)
            diff, low, high, p = paired_difference_test(
                a, b, spec.statistic, **boot.kwargs(model, "diff", *key.parts())
            )
            rows[key] = Paired(
                value=seed_mean(spec.statistic, a),
                parent_value=seed_mean(spec.statistic, b),
                diff=diff,
                ci_low=low,
                ci_high=high,
                p_value=p,
                n_units=int(a.shape[1]),
                n_seeds=a.shape[0],
                ci_note=note_of(a - b, boot),
            )
    return rows


def _domains(frame: pd.DataFrame, promptset: str, source: str) -> dict[str, list[np.ndarray]]:
    """Domain -> the prompt positions of each of its groups (domains of two or more groups)."""
    groups = _groups(frame, promptset, source)
    out = {}
    for domain in sorted({d for d, _ in groups}):
        members = [idx for (d, _g), idx in groups.items() if d == domain]
        if len(members) < 2:
            log.warning("%s: domain %r has a single group; no disparity rows", source, domain)
            continue
        out[domain] = members
    return out


def _disparity_note(groups: list[np.ndarray], boot: Bootstrap, corrected: bool) -> str:
    """Why a disparity row over ``groups`` has no interval, or "".

    A corrected disparity leaves out groups of one prompt (their noise cannot
    be estimated); its interval rests on the smallest remaining group.
    """
    used = [g for g in groups if g.shape[-1] >= 2] if corrected else groups
    constant = all(is_constant(g) for g in used)
    smallest = min((g.shape[-1] for g in used), default=0)
    return no_interval_reason(smallest, constant and not corrected, max(boot.min_units, 2))


def _corrected(
    groups: list[np.ndarray],
    parents: list[np.ndarray] | None,
    boot: Bootstrap,
    key: tuple[str, ...],
) -> tuple[float, float, float, float] | None:
    if sum(g.shape[-1] >= 2 for g in groups) < 2:
        return None  # the noise of a one-prompt group cannot be estimated
    return corrected_disparity_test(groups, parents, **boot.kwargs(*key))


def disparity_rows(
    frames: list[pd.DataFrame], promptset: str, source: str, boot: Bootstrap, model: str
) -> Rows:
    """Per domain of two or more groups: the corrected disparities, and the raw gap and spread."""
    rows: Rows = {}
    for domain, members in _domains(frames[0], promptset, source).items():
        for metric, column in CORRECTED_DISPARITIES:
            if column in frames[0].columns:
                values = stack(frames, column)
                groups = [values[:, idx] for idx in members]
                found = _corrected(groups, None, boot, (model, promptset, domain, metric))
                if found is not None:
                    note = _disparity_note(groups, boot, corrected=True)
                    rows[Key(promptset, domain, metric)] = Estimate(*found[:3], note)
        for metric, column, kind in DISPARITY_METRICS:
            if column not in frames[0].columns:
                continue
            values = stack(frames, column)
            groups = [values[:, idx] for idx in members]
            found = group_disparity_ci(
                groups, kind, **boot.kwargs(model, promptset, domain, metric)
            )
            note = _disparity_note(groups, boot, False)
            rows[Key(promptset, domain, metric)] = Estimate(*found, note)
    return rows


def paired_disparity_rows(
    frames: list[pd.DataFrame],
    parent_frames: list[pd.DataFrame],
    promptset: str,
    source: str,
    boot: Bootstrap,
    model: str,
) -> PairedRows:
    """Model minus parent for each corrected disparity, resampling the same prompts for both."""
    rows: PairedRows = {}
    for domain, members in _domains(frames[0], promptset, source).items():
        for metric, column in CORRECTED_DISPARITIES:
            if column not in frames[0].columns or column not in parent_frames[0].columns:
                continue
            a, b = stack(frames, column), stack(parent_frames, column)
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                continue
            key = Key(promptset, domain, metric)
            groups = [a[:, i] for i in members]
            parents = [b[:, i] for i in members]
            found = _corrected(groups, parents, boot, (model, "diff", *key.parts()))
            if found is None:
                continue
            diff, low, high, p = found
            rows[key] = Paired(
                value=corrected_disparity(groups),
                parent_value=corrected_disparity(parents),
                diff=diff,
                ci_low=low,
                ci_high=high,
                p_value=p,
                n_units=int(a.shape[1]),
                n_seeds=a.shape[0],
                ci_note=_disparity_note(
                    [x - y for x, y in zip(groups, parents, strict=True)], boot, corrected=True
                ),
            )
    return rows
