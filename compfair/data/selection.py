"""The one seeded selection of prompt and benchmark items (a subset drawn with a seed).

Called *selection* so that "sampling" means one thing in this package: drawing tokens
(:mod:`compfair.sampling`).

:func:`seeded_selection` draws with :class:`random.Random` and returns the chosen
items in their source order, so a sample reads like the file it came from and
does not depend on how the caller sorts afterwards.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from compfair.io import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")


def seeded_selection(
    items: Sequence[T], n: int | None, seed: int | str | random.Random, what: str = "sample"
) -> list[T]:
    """``n`` items drawn without replacement, in the order they have in ``items``.

    ``seed`` is an int or a string (a string seeds :class:`random.Random` by
    its SHA-512, the same in every process) or a ready generator. The chosen
    positions are those of ``random.Random(seed).sample(range(len(items)), n)``,
    so the chosen *set* equals what ``random.Random(seed).sample(items, n)``
    gives. ``n`` None, or at least ``len(items)``, keeps every item (a warning
    when ``n`` is larger); ``what`` names the items in that warning.

    Raises:
        InputError: ``n`` below 1.
    """
    if n is None:
        return list(items)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"{what}: sample size must be a whole number of at least 1, got {n!r}")
    if n >= len(items):
        if n > len(items):
            log.warning("%s: asked for %d items, only %d available; using all", what, n, len(items))
        return list(items)
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    return [items[i] for i in sorted(rng.sample(range(len(items)), n))]


def select_per_group(
    rows: Sequence[dict[str, Any]],
    per_group: int | None,
    seed: int,
    what: str,
    key: Callable[[dict[str, Any]], Hashable] | None = None,
) -> list[dict[str, Any]]:
    """``per_group`` rows of every (domain, group), each group drawn with its own stream.

    A group's generator is seeded with ``"<seed>:<domain>:<group>"``, so its
    sample depends only on the seed and its own name: adding or removing
    another group changes nothing in it. Rows come back in source order
    (``key`` None) or sorted by ``key``.
    """
    groups: dict[tuple[Any, Any], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((row["domain"], row["group"]), []).append(i)
    chosen: list[int] = []
    for (domain, group), members in groups.items():
        label = f"{what} [{domain}/{group}]"
        chosen += seeded_selection(members, per_group, f"{seed}:{domain}:{group}", label)
    picked = [rows[i] for i in sorted(chosen)]
    return picked if key is None else sorted(picked, key=key)
