"""Prompts with a domain and a group (BOLD and the project's bias prompts).

Shared by the ``bias_csv``, ``bold_json``, ``bold_hub`` and ``plain`` prompt
sources: the rules group names obey, the choice of domains, and BOLD's
per-entity prompt lists turned into rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from compfair.data.selection import select_per_group
from compfair.io import InputError

log = logging.getLogger(__name__)

#: The options every grouped source takes (JSON-schema properties).
GROUP_OPTIONS: dict[str, Any] = {
    "per_group": {
        "type": "integer",
        "minimum": 1,
        "description": "Seeded sample of this many prompts per group (unset: all).",
    },
    "domains": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Only these domains (unset: all).",
    },
}


def by_group_and_id(row: dict[str, Any]) -> tuple[str, str, str]:
    """The order of the bias prompt files: domain, group, prompt_id."""
    return (row["domain"], row["group"], row["prompt_id"])


def select_domains(
    rows: list[dict[str, Any]], domains: Iterable[str] | None, what: str
) -> list[dict[str, Any]]:
    """The rows of the given domains (None: all rows).

    Raises:
        InputError: a domain that no row has (the available ones are listed).
    """
    if domains is None:
        return rows
    domains = list(domains)
    available = sorted({r["domain"] for r in rows if r["domain"] is not None})
    unknown = [d for d in domains if d not in available]
    if unknown:
        raise InputError(
            f"{what}: unknown domain(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return [r for r in rows if r["domain"] in set(domains)]


def check_group_names(rows: list[dict[str, Any]], what: str) -> None:
    """Groups must be unique across domains and differ from domain names.

    ``metrics.csv`` has a ``group`` column but no domain column, and the
    sentiment gap of an axis is written with ``group`` = the domain name.

    Raises:
        InputError: a group in two domains, or a group named like a domain.
    """
    domain_of: dict[str, str] = {}
    for row in rows:
        if row["group"] is None:
            continue
        first = domain_of.setdefault(row["group"], row["domain"])
        if first != row["domain"]:
            raise InputError(
                f"{what}: group {row['group']!r} appears in domains {first!r} and {row['domain']!r}"
            )
    clash = sorted(set(domain_of) & {r["domain"] for r in rows})
    if clash:
        raise InputError(f"{what}: group name(s) equal to a domain name: {', '.join(clash)}")


def add_bold_prompts(
    rows: list[dict[str, Any]],
    counters: dict[tuple[str, str], int],
    domain: str,
    group: str,
    prompts: Iterable[str],
    where: str,
) -> int:
    """Append one BOLD entity's prompts to ``rows``; return how many were empty.

    Prompt text is stripped (BOLD prompts end with a space, which would end the
    prompt on a lone-space token) and empty prompts are dropped with a warning.
    ``counters`` numbers the prompts of each (domain, group) in reading order,
    which makes ``prompt_id`` = ``bold-<domain>-<group>-<n, 5 digits>``.
    """
    n_empty = 0
    for prompt in prompts:
        text = prompt.strip()
        if not text:
            n_empty += 1
            log.warning("%s: empty prompt dropped", where)
            continue
        k = counters[(domain, group)] = counters.get((domain, group), 0) + 1
        rows.append(
            {
                "prompt_id": f"bold-{domain}-{group}-{k:05d}",
                "promptset": "bold",
                "text": text,
                "domain": domain,
                "group": group,
                "source_scores": {},
            }
        )
    return n_empty


def finish_bold(
    rows: list[dict[str, Any]],
    n_empty: int,
    per_group: int | None,
    seed: int,
    domains: list[str] | None,
    what: str,
) -> list[dict[str, Any]]:
    """Check the group names, keep ``domains``, draw ``per_group`` of each group.

    Rows come back sorted by domain, group and prompt_id.

    Raises:
        InputError: no prompts, a bad group name, an unknown domain.
    """
    if not rows:
        raise InputError(f"{what}: no prompts")
    check_group_names(rows, what)
    n_all = len(rows)
    rows = select_domains(rows, domains, what)
    chosen = select_per_group(rows, per_group, seed, what, key=by_group_and_id)
    log.info(
        "%s: %d prompts (%d empty dropped), %d in the chosen domains, %d chosen",
        what,
        n_all,
        n_empty,
        len(rows),
        len(chosen),
    )
    return chosen
