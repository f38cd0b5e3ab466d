"""The models of a study, as a registry of *variants*, each with its parent.

Every model the study generates from, scores and evaluates is a
:class:`Variant`: a name, a family (:data:`FAMILIES`), a method, a level and
the parent it was made from. This module builds them from the config and owns
everything about their names: the format (``magnitude-0.50``, ``kd-0.50``),
the wildcard patterns, the display order, and the (family, method, level) of
a name. Nothing else in the workflow spells a variant name or a level format.

- ``base``: the imported base model (family ``base``, no parent);
- ``teacher``: the base model fine-tuned on the corpus (``finetuned``, parent ``base``);
- students (``distillation``): ``kd-<keep>``, the teacher's layers ``<keep>``
  trained against the teacher (method ``kd``), and with
  ``distillation.no_kd_control`` their controls ``nokd-<keep>`` (method
  ``nokd``: the same student trained on the language-modelling loss alone);
- ``<entry>-<level>`` for every level of every ``compression`` entry (family
  of its method: ``pruning`` or ``quantization``; parent ``teacher`` unless
  the entry names another variant);
- references (``reference``): models taken as they are, by their config name,
  with the parent the config gives (or none);
- quality-matched controls (``control``): ``<kind>-match-<model>`` (and
  ``-draw<d>`` for the further draws of ``controls.draws``) for every
  kind listed under ``controls.models.<model>``, made from the model's parent
  by a generic degradation (method ``<kind>``: ``noise`` or ``random``) tuned
  to the model's perplexity ratio; ``matches`` names the model.

A level is named exactly or not at all: a share is written with at least two
and at most four decimals (``0.5`` -> ``0.50``, ``0.333`` -> ``0.333``), so
the job compresses at the configured value and the name says which; a share
that needs more digits is rejected before any job runs.

Light on purpose (no torch, no pandas): the Snakefile imports it to plan.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger(__name__)

FAMILIES = (
    "base",
    "finetuned",
    "distillation",
    "pruning",
    "quantization",
    "degradation",
    "control",
    "reference",
)
#: Families made by the generic compression rule (:meth:`Variants.compressed`).
COMPRESSED_FAMILIES = ("pruning", "quantization", "degradation")
#: The generic degradations a matched control can use (compression methods of those names).
CONTROL_KINDS = ("noise", "random")
BASE, TEACHER = "base", "teacher"
#: Methods of the distillation family: with the teacher's soft targets, and the control without.
DISTILLATION_METHODS = ("kd", "nokd")
#: Named choices of the teacher layers a student keeps (besides a share or a list).
#: ``distilgpt2`` is DistilGPT-2's: teacher layers 0, 2, 4, 7, 9, 11 of GPT-2's 12.
NAMED_LAYER_CHOICES = {"every_other": None, "distilgpt2": (0, 2, 4, 7, 9, 11)}
#: Most decimals a share may have: its name must say exactly what was run.
MAX_DECIMALS = 4
_ENTRY = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = (BASE, TEACHER, *DISTILLATION_METHODS, "reference", "seed")
#: Names a reference may not take (the schema's ``references`` property names).
RESERVED_REFERENCE_NAMES = (BASE, TEACHER, "reference", "seed")


class VariantError(ValueError):
    """The config's models cannot be built; ``problems`` names every offending key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Variant:
    """One model of the study.

    ``level`` is the label used in the name (``"0.50"``, ``"4"``, ``"2of4"``)
    or None; ``value`` the exact level the job runs at (``0.5``, ``4``,
    ``"2:4"``, a layer list). ``entry`` is the config key that made it
    (``compression.<entry>``, ``distillation.students[i]``,
    ``references.<name>``). ``options`` are the method's options with their
    defaults filled in.
    """

    name: str
    family: str
    method: str
    level: str | None = None
    parent: str | None = None
    value: Any = None
    entry: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    matches: str | None = None

    @property
    def trained(self) -> bool:
        """Made by the workflow per training seed (not imported as is)."""
        return self.family not in (BASE, "reference")


# --------------------------------------------------------------------------- levels


def _not_number_hint(value: Any) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (YAML read it as a string: write it with a digit before the exponent's dot, e.g. 1.0e-4, or as a plain decimal)"
    return ""


def fraction_label(value: Any) -> str:
    """The exact label of a share in (0, 1): ``0.5`` -> ``"0.50"``; ``ValueError`` if impossible."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number{_not_number_hint(value)}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{value!r} is not strictly between 0 and 1")
    try:
        digits = -Decimal(repr(float(value))).normalize().as_tuple().exponent
    except InvalidOperation as exc:  # pragma: no cover - repr of a float always parses
        raise ValueError(f"{value!r} is not a decimal number") from exc
    if digits > MAX_DECIMALS:
        raise ValueError(
            f"{value!r} cannot be named exactly with at most {MAX_DECIMALS} decimals "
            f"(paths and tables would show a rounded level); round it in the config"
        )
    return f"{float(value):.{max(2, digits)}f}"


def integer_label(value: Any) -> str:
    """The label of a positive integer level (bits, layers): ``4`` -> ``"4"``."""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = " (write it without a decimal point)" if isinstance(value, float) else ""
        raise ValueError(f"{value!r} is not an integer{hint}")
    if value < 1:
        raise ValueError(f"{value!r} is not a positive integer")
    return str(value)


def n_of_m_label(value: Any) -> str:
    """The label of an N:M sparsity pattern: ``"2:4"`` -> ``"2of4"``."""
    match = re.fullmatch(r"(\d+):(\d+)", str(value)) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{value!r} is not an N:M pattern such as "2:4" (quote it in YAML)')
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise ValueError(f"{value!r}: need 0 < N < M")
    return f"{n}of{m}"


LEVEL_LABELS = {"fraction": fraction_label, "integer": integer_label, "n_of_m": n_of_m_label}


def level_value(label: str, kind: str) -> Any:
    """The level a label names (the inverse of the label functions)."""
    if kind == "fraction":
        return float(label)
    if kind == "integer":
        return int(label)
    n, m = label.split("of")
    return f"{int(n)}:{int(m)}"


def students_label(keep: Any) -> str:
    """Label of a student's layer choice: a share, a named choice or a list of layers."""
    if isinstance(keep, str):
        if keep not in NAMED_LAYER_CHOICES:
            raise ValueError(
                f"{keep!r} is not a named layer choice ({', '.join(NAMED_LAYER_CHOICES)})"
            )
        return keep
    if isinstance(keep, list):
        if not keep or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in keep
        ):
            raise ValueError(f"{keep!r}: a layer list needs non-negative integers")
        if len(set(keep)) != len(keep):
            raise ValueError(f"{keep!r}: a layer is listed twice")
        return "L" + "_".join(str(i) for i in keep)
    return fraction_label(keep)


# --------------------------------------------------------------------------- the registry


class Variants(Mapping[str, Variant]):
    """The variants of a study by name, in display order."""

    def __init__(self, variants: list[Variant]) -> None:
        self._by_name = {v.name: v for v in variants}

    def __getitem__(self, name: str) -> Variant:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def of_family(self, *families: str) -> list[Variant]:
        return [v for v in self._by_name.values() if v.family in families]

    def names(self, *families: str) -> list[str]:
        return [v.name for v in self.of_family(*families)] if families else list(self)

    def compressed(self) -> list[Variant]:
        """Variants made by the generic compression rule (:data:`COMPRESSED_FAMILIES`)."""
        return self.of_family(*COMPRESSED_FAMILIES)

    def lineage(self, name: str) -> list[str]:
        """``name`` and its ancestors, nearest first."""
        chain = [name]
        while self._by_name[chain[-1]].parent is not None:
            chain.append(self._by_name[chain[-1]].parent)
        return chain

    def wildcard(self, *families: str) -> str:
        """A regular expression matching exactly the names of these families."""
        names = self.names(*families)
        return "|".join(re.escape(n) for n in names) if names else "(?!)"

    def rank(self, name: str) -> int:
        """Position of ``name`` in display order (unknown names last)."""
        order = {n: i for i, n in enumerate(self._by_name)}
        return order.get(name, len(order))

    def table(self) -> list[dict[str, Any]]:
        """One record per variant (name, family, method, level, parent), in display order."""
        return [
            {
                "model": v.name,
                "family": v.family,
                "method": v.method,
                "level": v.level,
                "parent": v.parent,
                "matches": v.matches,
            }
            for v in self._by_name.values()
        ]


def _students(config: Mapping[str, Any], problems: list[str]) -> list[Variant]:
    dist = config.get("distillation") or {}
    methods = ["kd", "nokd"] if dist.get("no_kd_control") else ["kd"]
    out = []
    for i, keep in enumerate(dist.get("students") or []):
        try:
            label = students_label(keep)
        except ValueError as exc:
            problems.append(f"config key distillation.students[{i}]: {exc}")
            continue
        for method in methods:
            out.append(
                Variant(
                    f"{method}-{label}",
                    "distillation",
                    method,
                    label,
                    TEACHER,
                    keep,
                    f"distillation.students[{i}]",
                )
            )
    return out


def _method_options(method: Any, entry: str, options: Any, problems: list[str]) -> dict:
    from compfair.plugins import option_problems

    options = dict(options or {})
    key = f"compression.{entry}.options"
    problems += option_problems(method.options_schema, options, key, f"method {method.name!r}")
    return {**method.defaults(), **options}


def _compressed(config: Mapping[str, Any], problems: list[str]) -> list[Variant]:
    from compfair.compression import METHODS, load_builtin_methods

    load_builtin_methods()
    out = []
    # Sorted by entry name: the display order, and so every table and
    # figure, must not depend on the order of keys in the YAML.
    compression = config.get("compression") or {}
    for entry in sorted(compression):
        spec = compression[entry] or {}
        if not _ENTRY.match(entry) or entry in RESERVED:
            problems.append(
                f"config key compression.{entry}: entry names are lower-case words "
                f"(letters, digits, _) other than {', '.join(RESERVED)}"
            )
            continue
        name = spec.get("method", entry)
        if name not in METHODS:
            problems.append(
                f"config key compression.{entry}"
                + (".method" if "method" in spec else "")
                + f": unknown compression method {name!r} (known: {', '.join(sorted(METHODS))})"
            )
            continue
        method = METHODS[name]()
        options = _method_options(method, entry, spec.get("options"), problems)
        labels: dict[str, Any] = {}
        for i, level in enumerate(spec.get("levels") or []):
            key = f"config key compression.{entry}.levels[{i}]"
            try:
                label = LEVEL_LABELS[method.level_kind](level)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
            problem = method.check_level(level)
            if problem:
                problems.append(f"{key}: {problem}")
            elif label in labels:
                problems.append(f"{key}: {level!r} repeats the level {labels[label]!r}")
            else:
                labels[label] = level
        parent = spec.get("parent", TEACHER)
        for label in sorted(labels, key=lambda lab: _level_sort_key(labels[lab])):
            out.append(
                Variant(
                    f"{entry}-{label}",
                    method.family,
                    name,
                    label,
                    parent,
                    labels[label],
                    f"compression.{entry}",
                    options,
                )
            )
    return out


def _level_sort_key(value: Any) -> tuple:
    if isinstance(value, str) and ":" in value:
        n, m = value.split(":")
        return (int(m), int(n))
    return (float(value),)


def _references(config: Mapping[str, Any]) -> list[Variant]:
    references = config.get("references") or {}
    return [
        Variant(
            name,
            "reference",
            (references[name] or {}).get("compression", "none"),
            None,
            (references[name] or {}).get("parent"),
            None,
            f"references.{name}",
        )
        for name in sorted(references)
    ]


def control_name(kind: str, model: str, draw: int = 1) -> str:
    """The name of draw ``draw`` of ``model``'s matched control of ``kind``:
    ``noise-match-wanda-0.50``, then ``noise-match-wanda-0.50-draw2``, ..."""
    return f"{kind}-match-{model}" + (f"-draw{draw}" if draw > 1 else "")


def _controls(config: Mapping[str, Any], made: list[Variant], problems: list[str]) -> list[Variant]:
    """``controls.draws`` controls per (model, kind) of ``controls.models``, parent the
    model's parent."""
    by_name = {v.name: v for v in made}
    draws = int((config.get("controls") or {}).get("draws") or 1)
    wanted = {
        model: kinds
        for model, kinds in ((config.get("controls") or {}).get("models") or {}).items()
        if kinds is not None  # null: a preset removed it
    }
    out = []
    # In the display order of the models they match (unknown names last, for the errors).
    order = [v.name for v in made if v.name in wanted] + sorted(set(wanted) - set(by_name))
    for model in order:
        key = f"config key controls.models.{model}"
        target = by_name.get(model)
        if target is None:
            # A preset that changes a method's levels would otherwise fail on every
            # control of config.yaml's levels: skipped, and said, at planning.
            log.warning("%s: %r is not a model of the study; no control for it", key, model)
            continue
        if target.parent is None:
            problems.append(f"{key}: {model!r} has no parent (a control matches a model to it)")
            continue
        for kind in wanted[model] or []:
            if kind not in CONTROL_KINDS:
                problems.append(
                    f"{key}: unknown control kind {kind!r} ({', '.join(CONTROL_KINDS)})"
                )
                continue
            for draw in range(1, draws + 1):  # a control's value is its draw
                name = control_name(kind, model, draw)
                out.append(
                    Variant(name, "control", kind, None, target.parent, draw, key[11:], {}, model)
                )
    return out


def _check_parents(variants: list[Variant], problems: list[str]) -> None:
    names = {v.name for v in variants}
    for v in variants:
        if v.parent is not None and v.parent not in names:
            key = f"{v.entry}.parent" if v.entry else v.name
            problems.append(
                f"config key {key}: parent {v.parent!r} of {v.name!r} is not a model of "
                f"the study (models: {', '.join(sorted(names))})"
            )
    by_name = {v.name: v for v in variants}
    for v in variants:
        seen = [v.name]
        while by_name.get(seen[-1]) is not None and by_name[seen[-1]].parent in by_name:
            nxt = by_name[seen[-1]].parent
            if nxt in seen:
                problems.append(
                    f"config key {v.entry}.parent: {' -> '.join([*seen, nxt])} is a cycle"
                )
                break
            seen.append(nxt)


def build_variants(config: Mapping[str, Any]) -> Variants:
    """Every model of the study described by ``config``, in display order.

    Raises :class:`VariantError` listing every problem (unknown method, a
    level that cannot be named exactly, a repeated level, a parent that is
    not a model of the study, a cycle, two variants with one name).
    """
    problems: list[str] = []
    made = [
        Variant(BASE, BASE, "none"),
        Variant(TEACHER, "finetuned", "finetune", None, BASE),
        *_students(config, problems),
        *sorted(_compressed(config, problems), key=lambda v: FAMILIES.index(v.family)),
    ]
    references = _references(config)
    variants = [*made, *_controls(config, [*made, *references], problems), *references]
    seen: dict[str, str | None] = {}
    for v in variants:
        if v.name in seen:
            problems.append(
                f"config key {v.entry}: model name {v.name!r} is also made by {seen[v.name]}"
            )
        seen[v.name] = v.entry
    _check_parents(variants, problems)
    if problems:
        raise VariantError(problems)
    return Variants(variants)


def variant_problems(config: Mapping[str, Any]) -> list[str]:
    """The problems :func:`build_variants` would raise, as messages (empty: fine)."""
    try:
        build_variants(config)
    except VariantError as exc:
        return exc.problems
    return []
