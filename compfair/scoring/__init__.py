"""Toxicity scorers as plug-ins, registered by name, and the scores of a generations file.

A scorer turns a list of texts into toxicity probabilities in [0, 1]. Adding
one is adding one module to :mod:`compfair.scoring.scorers` (every module there
is imported when the registry is first read), or a file named by the config
key ``plugins``::

    @register_scorer("my_scorer")
    class MyScorer(ToxicityScorer):
        def __init__(self, some_option: int = 3) -> None: ...
        def score(self, texts: list[str]) -> np.ndarray:
            return check_probs(..., len(texts), self.name)

and naming it in the config (``scoring.toxicity_scorer: my_scorer``,
``scoring.scorer_options: {some_option: 4}``). The options a scorer takes are
the parameters of its ``__init__``: :func:`scorer_option_problems` checks a
config against them before any job runs, :func:`get_scorer` again when it
builds the scorer.

The built-in scorers: ``profanity_check`` (the offline default, a TF-IDF +
linear model), ``jigsaw_bilstm`` (an offline BiLSTM trained on the Jigsaw
data), ``hf_classifier`` (any Hugging Face sequence classifier) and
``detoxify`` (the paper's scorer). :func:`score_generations`
(:mod:`compfair.scoring.generations`) writes a generations file's scores;
:func:`regard_scores` (:mod:`compfair.scoring.regard`) gives the regard classes.

Importing this package and reading :data:`SCORERS` imports no torch,
transformers, scikit-learn or h5py: the Snakefile reads the registry to plan a
study. Scorer modules therefore import those inside their functions.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from compfair.io import InputError
from compfair.plugins import Registry

if TYPE_CHECKING:
    from compfair.scoring.generations import score_generations, vader_compound
    from compfair.scoring.regard import REGARD_LABELS, regard_scores
    from compfair.scoring.scorers.detoxify import DETOXIFY_VARIANTS
    from compfair.scoring.scorers.jigsaw_bilstm import JIGSAW_LABELS, JIGSAW_MAXLEN

__all__ = [
    "DETOXIFY_VARIANTS",
    "JIGSAW_LABELS",
    "JIGSAW_MAXLEN",
    "REGARD_LABELS",
    "SCORERS",
    "ToxicityScorer",
    "check_probs",
    "get_scorer",
    "load_builtin_scorers",
    "regard_scores",
    "register_scorer",
    "score_generations",
    "scorer_option_problems",
    "vader_compound",
]

#: Where the built-in scorers live: every module of this package registers one.
BUILTIN_PACKAGE = "compfair.scoring.scorers"


class ToxicityScorer(abc.ABC):
    """Maps texts to toxicity probabilities in [0, 1]; its ``__init__`` parameters are its options."""

    name: ClassVar[str] = "abstract"
    #: Whether the scorer runs a neural network that a GPU speeds up; the
    #: scoring rules ask the cluster for a GPU only then.
    uses_gpu: ClassVar[bool] = False

    @abc.abstractmethod
    def score(self, texts: list[str]) -> np.ndarray:
        """Return a float array of shape ``(len(texts),)`` with values in [0, 1]."""


def _init_options(
    cls: type[ToxicityScorer], what: str, options: Mapping[str, Any], key: str
) -> list[str]:
    """The scorers' option check: their options are the parameters of their ``__init__``.

    One message per option it does not take (listing the ones it does; any is taken when
    it has ``**kwargs``) and per parameter without a default that ``options`` lacks.
    """
    params = inspect.signature(cls.__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = [p for p in params if p.name != "self" and p.kind in kinds]
    messages = [
        f"config key {key}.{p.name}: required by {what}"
        for p in named
        if p.default is inspect.Parameter.empty and p.name not in options
    ]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        accepted = [p.name for p in named]
        messages += [
            f"config key {key}.{option}: {what} takes no option {option!r} "
            f"(it takes: {', '.join(accepted) or 'none'})"
            for option in sorted(set(options) - set(accepted))
        ]
    return messages


_REGISTRY: Registry[type[ToxicityScorer]] = Registry(
    "toxicity scorer", ToxicityScorer, BUILTIN_PACKAGE, check_options=_init_options
)
#: Every registered scorer class by name (the built-in ones appear on first read).
SCORERS: Registry[type[ToxicityScorer]] = _REGISTRY


def _registry() -> Registry[type[ToxicityScorer]]:
    """The scorer registry as this module holds it now.

    Tests swap :data:`SCORERS` for a plain copy (``monkeypatch.setattr``) to keep their
    throwaway scorers to themselves; the copy is read and written through the same checks.
    """
    return SCORERS if isinstance(SCORERS, Registry) else _REGISTRY.over(SCORERS)


def load_builtin_scorers() -> Mapping[str, type[ToxicityScorer]]:
    """Import every module of :mod:`compfair.scoring.scorers` (once); return :data:`SCORERS`."""
    _registry().load()
    return SCORERS


def register_scorer(name: str) -> Callable[[type[ToxicityScorer]], type[ToxicityScorer]]:
    """Class decorator: register a :class:`ToxicityScorer` subclass under ``name``.

    Refuses (``ValueError``) a name already taken by another class, built-in
    ones included, and (``TypeError``) a class that is not a scorer.
    """
    return _registry().register(name)


def scorer_option_problems(name: str, options: Mapping[str, Any]) -> list[str]:
    """What is wrong with scorer ``name`` and its ``options``, one message per key (empty: fine).

    The messages name the config keys: ``scoring.toxicity_scorer`` for an
    unknown scorer (listing the known ones), ``scoring.scorer_options.<key>``
    for an option its ``__init__`` does not take (listing the ones it does;
    any is taken when it has ``**kwargs``) or a parameter without a default
    that ``options`` lacks. Nothing is imported beyond the scorer modules.
    """
    registry = _registry()
    if name not in registry:
        # the config key says "toxicity" already
        return [registry.unknown_message(name, "scoring.toxicity_scorer", kind="scorer")]
    return registry.problems(name, options, "scoring.scorer_options")


def get_scorer(name: str, **options: Any) -> ToxicityScorer:
    """Instantiate the scorer registered as ``name`` with ``options``.

    Raises :class:`InputError` for an unknown name (listing the known ones), an
    option the scorer does not take (listing the ones it does) or a required
    option left out, each naming its config key.
    """
    registry = _registry()
    cls = registry.lookup(name, "scoring.toxicity_scorer")
    problems = registry.problems(name, options, "scoring.scorer_options")
    if problems:
        raise InputError("; ".join(problems))
    return cls(**options)


def check_probs(probs: Any, n: int, name: str) -> np.ndarray:
    """``probs`` as a float array of shape ``(n,)``; ``RuntimeError`` if not that or not in [0, 1]."""
    probs = np.asarray(probs, dtype=float).reshape(-1)
    if probs.shape != (n,):
        raise RuntimeError(f"scorer {name!r} returned {probs.shape[0]} scores for {n} texts")
    if n and (not np.all(np.isfinite(probs)) or probs.min() < 0.0 or probs.max() > 1.0):
        raise RuntimeError(f"scorer {name!r} returned scores outside [0, 1]")
    return probs


# The names below live in submodules that import pandas or a scorer module;
# importing them on first use keeps ``import compfair.scoring`` light for planning.
_LAZY = {
    "score_generations": "compfair.scoring.generations",
    "vader_compound": "compfair.scoring.generations",
    "regard_scores": "compfair.scoring.regard",
    "REGARD_LABELS": "compfair.scoring.regard",
    "DETOXIFY_VARIANTS": "compfair.scoring.scorers.detoxify",
    "JIGSAW_LABELS": "compfair.scoring.scorers.jigsaw_bilstm",
    "JIGSAW_MAXLEN": "compfair.scoring.scorers.jigsaw_bilstm",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
