"""Compression methods as plug-ins, registered by name.

A method is one class in one module of :mod:`compfair.compression.methods`
(every module there is imported when the registry is first used), or in a
file named by the config key ``plugins``::

    @register_method("random")
    class RandomPruning(CompressionMethod):
        family = "pruning"
        level_kind = "fraction"          # how its levels are written in names
        options_schema = {"properties": {"scope": {"enum": ["global"]}}}

        def apply(self, model, level, options, context):
            ...                          # compress ``model`` in place
            return {"measured": ...}     # what was done, measured

        def verify(self, model, level, options, report):
            ...                          # raise if the saved model is off

and named in the config (``compression: {random: {levels: [0.5]}}``). The
workflow runs every method through one rule (``compress_model``), which loads
the parent folder, calls :meth:`CompressionMethod.apply`, saves the model,
reloads it and calls :meth:`CompressionMethod.verify` on the reloaded copy.

This module imports no torch: the Snakefile reads the registry to build the
DAG. Method modules therefore import torch inside their functions (or from a
helper module imported there), so that planning a study stays fast.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from compfair.plugins import Registry, schema_defaults

log = logging.getLogger(__name__)

#: The families a compression method can belong to (distillation trains, and has its own rule);
#: ``degradation``: a generic loss of quality (weight noise), the stuff of matched controls.
METHOD_FAMILIES = ("pruning", "quantization", "degradation")
#: How a method's levels are written: see :mod:`compfair.variants`.
LEVEL_KINDS = ("fraction", "integer", "n_of_m")


@dataclass
class Context:
    """What a method may use besides the model: calibration data and the seed.

    ``calibration`` is a ``[n_sequences, seq_len]`` LongTensor of token ids
    drawn (seeded) from the training split, or None when the method does not
    ask for it (``needs_calibration``). ``tokenizer`` is the parent's.
    """

    seed: int
    calibration: Any = None
    tokenizer: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class CompressionMethod(abc.ABC):
    """One compression method: what it takes from the config and what it does to a model."""

    name: ClassVar[str] = "abstract"
    #: ``pruning`` or ``quantization``.
    family: ClassVar[str] = "pruning"
    #: How levels are given and named: ``fraction`` (a share in (0, 1), e.g. a
    #: sparsity), ``integer`` (e.g. bits) or ``n_of_m`` (``"2:4"``).
    level_kind: ClassVar[str] = "fraction"
    #: Whether :meth:`apply` needs calibration sequences from the training split.
    needs_calibration: ClassVar[bool] = False
    #: JSON-schema ``properties`` (and optional ``required``) of the method's
    #: ``options``; checked before any job runs. Defaults are filled from it.
    options_schema: ClassVar[Mapping[str, Any]] = {}
    #: One line for the table of methods (docs/methods.md) and the provenance.
    summary: ClassVar[str] = ""
    #: Where the method comes from (for the table of methods in docs/methods.md).
    paper: ClassVar[str] = ""
    #: As a matched control's degradation: the power of the level by which the excess
    #: log-perplexity grows at small levels (the strength search's first steps; see
    #: :func:`compfair.compression.matching.match_strength`).
    degradation_power: ClassVar[float] = 2.0

    @abc.abstractmethod
    def apply(
        self, model: Any, level: Any, options: Mapping[str, Any], context: Context
    ) -> dict[str, Any]:
        """Compress ``model`` (a loaded causal LM) to ``level``; return a report.

        In place, or, for a method that builds another model (depth pruning
        drops whole blocks), by leaving the new model in
        ``context.extra["model"]``. The report is JSON-serialisable and says
        what was done, measured (e.g. the measured sparsity, per matrix).
        """

    @abc.abstractmethod
    def verify(
        self, model: Any, level: Any, options: Mapping[str, Any], report: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Check the *reloaded* model against ``level``; raise ``RuntimeError`` if it is off.

        Returns measurements of the reloaded model to add to the report.
        """

    def check_level(self, level: Any) -> str | None:
        """A problem with ``level`` for this method beyond its kind's format (None: fine)."""
        return None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The options' defaults from :attr:`options_schema`."""
        return schema_defaults(cls.options_schema)


def _check_method(name: str, cls: type[CompressionMethod]) -> None:
    """Refuse (``ValueError``) a method of a family or level kind the workflow does not know."""
    if cls.family not in METHOD_FAMILIES:
        raise ValueError(f"method {name!r}: family {cls.family!r} not in {METHOD_FAMILIES}")
    if cls.level_kind not in LEVEL_KINDS:
        raise ValueError(f"method {name!r}: level_kind {cls.level_kind!r} not in {LEVEL_KINDS}")


#: Every registered method class by name (the built-in ones appear on first read).
METHODS: Registry[type[CompressionMethod]] = Registry(
    "compression method", CompressionMethod, "compfair.compression.methods", validate=_check_method
)
#: Class decorator: register a :class:`CompressionMethod` subclass under a name
#: (``TypeError``/``ValueError`` for a non-method, an unknown family or level kind, a taken name).
register_method = METHODS.register


def load_builtin_methods() -> Registry[type[CompressionMethod]]:
    """Import every module of :mod:`compfair.compression.methods` (once); return the registry."""
    METHODS.load()
    return METHODS


def get_method(name: str, key: str | None = None) -> CompressionMethod:
    """An instance of the method registered as ``name``; for an unknown name,
    :class:`~compfair.plugins.UnknownNameError` (a ``KeyError``) naming config key ``key``."""
    return METHODS.lookup(name, key)()
