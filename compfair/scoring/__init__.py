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
import pkgutil
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from compfair.io import InputError

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


class _ScorerRegistry(MutableMapping[str, type[ToxicityScorer]]):
    """Scorer classes by name; reading it first imports every module of the built-in package.

    Writing (what :func:`register_scorer` does) does not trigger the import, so
    the built-in modules can register themselves while it runs.
    """

    def __init__(self, package: str) -> None:
        self._package = package
        self._classes: dict[str, type[ToxicityScorer]] = {}
        self._state = "unloaded"  # -> "loading" -> "loaded"

    def load(self) -> None:
        """Import the built-in scorer modules once (a no-op while they are being imported)."""
        if self._state != "unloaded":
            return
        self._state = "loading"
        try:
            package = importlib.import_module(self._package)
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
                importlib.import_module(f"{self._package}.{info.name}")
        except BaseException:
            self._state = "unloaded"  # a later read tries again and shows the error again
            raise
        self._state = "loaded"

    def __getitem__(self, name: str) -> type[ToxicityScorer]:
        self.load()
        return self._classes[name]

    def __setitem__(self, name: str, cls: type[ToxicityScorer]) -> None:
        self._classes[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._classes[name]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(dict(self._classes))

    def __len__(self) -> int:
        self.load()
        return len(self._classes)

    def __repr__(self) -> str:
        return f"<scorer registry {sorted(self._classes)} ({self._state})>"


_REGISTRY = _ScorerRegistry(BUILTIN_PACKAGE)
#: Every registered scorer class by name (the built-in ones appear on first read).
SCORERS: MutableMapping[str, type[ToxicityScorer]] = _REGISTRY


def load_builtin_scorers() -> Mapping[str, type[ToxicityScorer]]:
    """Import every module of :mod:`compfair.scoring.scorers` (once); return :data:`SCORERS`."""
    _REGISTRY.load()
    return SCORERS


def register_scorer(name: str) -> Callable[[type[ToxicityScorer]], type[ToxicityScorer]]:
    """Class decorator: register a :class:`ToxicityScorer` subclass under ``name``.

    Refuses (``ValueError``) a name already taken by another class, built-in
    ones included, and (``TypeError``) a class that is not a scorer.
    """

    def decorate(cls: type[ToxicityScorer]) -> type[ToxicityScorer]:
        if name in SCORERS and SCORERS[name] is not cls:
            raise ValueError(f"scorer {name!r} is already registered ({SCORERS[name].__name__})")
        if not (isinstance(cls, type) and issubclass(cls, ToxicityScorer)):
            raise TypeError(f"{cls!r} is not a ToxicityScorer subclass")
        cls.name = name
        SCORERS[name] = cls
        return cls

    return decorate


def scorer_option_problems(name: str, options: Mapping[str, Any]) -> list[str]:
    """What is wrong with scorer ``name`` and its ``options``, one message per key (empty: fine).

    The messages name the config keys: ``scoring.toxicity_scorer`` for an
    unknown scorer (listing the known ones), ``scoring.scorer_options.<key>``
    for an option its ``__init__`` does not take (listing the ones it does;
    any is taken when it has ``**kwargs``) or a parameter without a default
    that ``options`` lacks. Nothing is imported beyond the scorer modules.
    """
    if name not in SCORERS:
        return [
            f"config key scoring.toxicity_scorer: unknown scorer {name!r} "
            f"(known: {', '.join(sorted(SCORERS))})"
        ]
    params = inspect.signature(SCORERS[name].__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = [p for p in params if p.name != "self" and p.kind in kinds]
    messages = [
        f"config key scoring.scorer_options.{p.name}: required by scorer {name!r}"
        for p in named
        if p.default is inspect.Parameter.empty and p.name not in options
    ]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        accepted = [p.name for p in named]
        messages += [
            f"config key scoring.scorer_options.{option}: scorer {name!r} takes no "
            f"option {option!r} (it takes: {', '.join(accepted) or 'none'})"
            for option in sorted(set(options) - set(accepted))
        ]
    return messages


def get_scorer(name: str, **options: Any) -> ToxicityScorer:
    """Instantiate the scorer registered as ``name`` with ``options``.

    Raises :class:`InputError` for an unknown name (listing the known ones), an
    option the scorer does not take (listing the ones it does) or a required
    option left out: the messages of :func:`scorer_option_problems`.
    """
    if name not in SCORERS:
        known = ", ".join(sorted(SCORERS))
        raise InputError(f"unknown toxicity scorer {name!r}; known scorers: {known}")
    problems = scorer_option_problems(name, options)
    if problems:
        raise InputError("; ".join(problems))
    return SCORERS[name](**options)


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
