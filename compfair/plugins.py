"""What every registry of plug-ins shares: the :class:`Registry` class, plug-in files, options.

Each kind of plug-in is one :class:`Registry` in its package: compression methods
(``compfair.compression.METHODS``), prompt sources (``compfair.data.sources.SOURCES``),
intrinsic benchmarks (``compfair.intrinsic.BENCHMARKS``), toxicity scorers
(``compfair.scoring.SCORERS``) and figures (``compfair.plots.FIGURES``). A registry imports its
package's built-in modules when it is first read, refuses an entry of the wrong type and a
second entry under a taken name (naming the files of both), answers an unknown name with the
known ones and the likeliest intended one, and checks an entry's config options: against its
JSON-schema ``options_schema`` through :func:`option_problems` (the config's own strict
validator), or through a check the registry brings (scorers read their ``__init__``). What only
one kind needs (a method's family, a source's path kinds, a figure's category) is a hook of
its instance or a thin wrapper around :meth:`Registry.register`.

The config's ``plugins`` (files or modules that register entries as they are imported) are
loaded at planning by ``rules/common.smk`` and in every job by :func:`load_job_plugins`,
which every rule script calls: so a plug-in of any kind reaches every job that may look it up,
and ``plugins`` is never a job's param (adding a plug-in file reruns nothing finished). A job
that uses an entry a plug-in file defines has that file as an input
(:func:`plugin_file_of`), so editing the plug-in reruns exactly those jobs.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from compfair.io import InputError

if TYPE_CHECKING:
    import jsonschema

#: Modules loaded from plug-in files are named ``compfair_plugin_<file stem>``.
PLUGIN_PREFIX = "compfair_plugin_"

#: The type of a registry's entries (a class, or e.g. a figure's spec).
T = TypeVar("T")
#: An option check: ``(entry, what, options, key)`` to messages naming ``<key>.<option>``;
#: ``what`` names the entry in them (``"method 'rtn'"``).
OptionCheck = Callable[[Any, str, Mapping[str, Any], str], list[str]]


def import_submodules(package: ModuleType, skip_private: bool = False) -> None:
    """Import every module of ``package`` in name order (each registers its plug-ins).

    With ``skip_private``, modules whose names start with ``_`` are left out.
    """
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not (skip_private and info.name.startswith("_")):
            importlib.import_module(f"{package.__name__}.{info.name}")


def option_problems(
    options_schema: Mapping[str, Any],
    options: Mapping[str, Any],
    key: str,
    what: str,
    also_takes: tuple[str, ...] = (),
) -> list[str]:
    """Unknown, missing and ill-typed options of one registry entry, each naming
    ``<key>.<option>``; ``what`` says whose (``"method 'rtn'"``), ``also_takes`` the keys
    the workflow reads beside the schema's (listed as taken). Types go through the config's
    own validator (:func:`strict_validator`), where an integer is an int (YAML's ``128.0`` is
    not)."""
    props = options_schema.get("properties", {})
    takes = ", ".join([*also_takes, *sorted(props)]) or "no options"
    problems = [
        f"config key {key}.{k}: unknown option of {what} (it takes: {takes})"
        for k in sorted(set(options) - set(props) - set(also_takes))
    ]
    problems += [
        f"config key {key}.{k}: required by {what}"
        for k in options_schema.get("required", ())
        if k not in options
    ]
    schema = {"type": "object", "properties": props}
    errors = strict_validator()(schema).iter_errors(dict(options))
    for err in sorted(errors, key=lambda e: list(map(str, e.path))):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        problems.append(f"config key {key}{where}: {err.message}{type_hint(err)}")
    return problems


def schema_options(also_takes: tuple[str, ...] = ()) -> OptionCheck:
    """The option check of a registry whose entries declare ``options_schema`` (none: no
    options): :func:`option_problems`, with ``also_takes`` the keys the workflow reads."""

    def check(entry: Any, what: str, options: Mapping[str, Any], key: str) -> list[str]:
        schema = getattr(entry, "options_schema", {})
        return option_problems(schema, options, key, what, also_takes)

    return check


def _strict_integer(checker: Any, instance: Any) -> bool:
    """Whether ``instance`` is an integer: an int, not a bool."""
    # JSON Schema counts 3.0 as an integer; the package needs an int (range(3.0) fails).
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def strict_validator() -> type[jsonschema.protocols.Validator]:
    """The JSON-schema validator (Draft 2020-12) of the config and of every registry's options,
    with integers that are ints, not floats with no fraction. It imports jsonschema on first
    use, so that importing a registry stays light."""
    import jsonschema

    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)


def type_hint(error: jsonschema.ValidationError) -> str:
    """Why YAML gave a value of the wrong type, where that is a common trap (else "")."""
    if error.validator != "type":
        return ""
    wanted = (
        error.validator_value
        if isinstance(error.validator_value, list)
        else [error.validator_value]
    )
    value = error.instance
    if isinstance(value, float) and "integer" in wanted and value.is_integer():
        return f" (write {int(value)}, without a decimal point)"
    if isinstance(value, str) and "number" in wanted:
        try:
            float(value)
        except ValueError:
            return ""
        return (
            f" (YAML reads {value} as a string: write the mantissa with a decimal point, "
            f"e.g. 1.0e-4, or the plain decimal)"
        )
    return ""


def schema_defaults(options_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of every property of a JSON-schema object that has one."""
    props = options_schema.get("properties", {})
    return {k: v["default"] for k, v in props.items() if "default" in v}


class UnknownNameError(InputError, KeyError):
    """A name nothing is registered under: bad input (an :class:`~compfair.io.InputError`)
    and a failed lookup (a ``KeyError``, as a mapping raises)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # KeyError's own would quote it


def defined_in(obj: Any) -> str:
    """Where ``obj`` (a class or function) is defined, for messages: ``file:line``, the file
    relative to the working folder when it is inside; its module when it has no file."""
    try:
        path = Path(inspect.getsourcefile(obj) or inspect.getfile(obj))
    except (TypeError, OSError):
        return f"module {getattr(obj, '__module__', None) or '?'}"
    try:
        line = f":{inspect.getsourcelines(obj)[1]}"
    except (TypeError, OSError):
        line = ""
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return f"{path}{line}"


def _same_definition(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one definition: the same object, or the same module and
    qualified name (a module imported again defines its classes again)."""

    def where(obj: Any) -> tuple[Any, Any]:
        return getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)

    return a is b or (where(a)[1] is not None and where(a) == where(b))


class Registry(MutableMapping[str, T], Generic[T]):
    """The entries of one kind of plug-in by name, with the built-in ones loaded on first read.

    Reading (``registry[name]``, ``in``, iteration, ``len``, :meth:`names`, :meth:`lookup`)
    first imports every module of ``package`` once (a no-op while they import, since they
    register here; tried again after a failed import, which shows the error again).
    :meth:`register` and :meth:`add` check an entry before filing it; item assignment and
    ``del`` store and remove without checks, like a dict's.

    Args:
        kind: what an entry is, in messages (``"compression method"``); its last word
            names one entry in option messages (``"method 'rtn'"``).
        base: the class every entry must subclass, or None for entries of another type
            (a figure's spec). A class entry gets its registered name as ``name``.
        package: the package whose modules register the built-in entries (None: none).
        skip_private: leave out the package's modules whose names start with ``_``.
        validate: ``(name, entry)``: raises ``ValueError`` for what else this kind refuses.
        defined_by: the class or function that defines an entry (default: the entry), to
            tell a second definition from the same one imported again, and where it is.
        check_options: how an entry's config options are checked (:func:`schema_options`).
    """

    def __init__(
        self,
        kind: str,
        base: type | None,
        package: str | None,
        *,
        skip_private: bool = False,
        validate: Callable[[str, T], None] | None = None,
        defined_by: Callable[[T], Any] | None = None,
        check_options: OptionCheck | None = None,
    ) -> None:
        self.kind = kind
        self.base = base
        self.package = package
        self.skip_private = skip_private
        self._validate = validate
        self._defined_by = defined_by or (lambda entry: entry)
        self._check_options = check_options or schema_options()
        self._entries: MutableMapping[str, T] = {}
        self._state = "unloaded"  # -> "loading" -> "loaded"

    def load(self) -> None:
        """Import the built-in modules once (a no-op while they are being imported)."""
        if self._state != "unloaded" or self.package is None:
            return
        self._state = "loading"
        try:
            import_submodules(importlib.import_module(self.package), self.skip_private)
        except BaseException:
            self._state = "unloaded"  # a later read tries again and shows the error again
            raise
        self._state = "loaded"

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: file the decorated class (or function) under ``name`` (see :meth:`add`)."""

        def decorate(entry: T) -> T:
            return self.add(name, entry)

        return decorate

    def add(self, name: str, entry: T) -> T:
        """File ``entry`` under ``name`` after :meth:`check`; return it."""
        self.check(name, entry)
        if self.base is not None:
            cast(Any, entry).name = name
        self._entries[name] = entry
        return entry

    def check(self, name: str, entry: T) -> None:
        """Refuse what :meth:`add` must not file: ``TypeError`` for an entry that is not a
        subclass of :attr:`base`, ``ValueError`` for what ``validate`` refuses or for a name
        that another definition holds (naming where each is defined). The same definition
        again (a module imported again) is no clash."""
        if self.base is not None and not (isinstance(entry, type) and issubclass(entry, self.base)):
            article = "an" if self.base.__name__[:1] in "AEIOU" else "a"
            raise TypeError(f"{entry!r} is not {article} {self.base.__name__} subclass")
        if self._validate is not None:
            self._validate(name, entry)
        new = self._defined_by(entry)
        if not (getattr(new, "__module__", None) or "").startswith(f"{self.package}."):
            # An entry of a plug-in: one that takes a built-in's name is refused here, not
            # while the built-ins load. (A built-in module, maybe half imported, must not
            # import its siblings: they may import it.)
            self.load()
        if name in self._entries:
            old = self._defined_by(self._entries[name])
            if not _same_definition(old, new):
                raise ValueError(
                    f"{self.kind} {name!r} is already registered: registered twice, "
                    f"by {defined_in(old)} and by {defined_in(new)}"
                )

    def lookup(self, name: str, key: str | None = None) -> T:
        """The entry registered as ``name``; :class:`UnknownNameError` naming config key ``key``
        (:meth:`unknown_message`) when there is none."""
        if name not in self:
            raise UnknownNameError(self.unknown_message(name, key))
        return self._entries[name]

    def unknown_message(self, name: Any, key: str | None = None, kind: str | None = None) -> str:
        """``config key <key>: unknown <kind> 'x'; did you mean 'y'? (known: ...)``, without
        the key's part when ``key`` is None, and the guess only when one is close; ``kind``
        words the entry differently (default: :attr:`kind`)."""
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1) if isinstance(name, str) else []
        guess = f"; did you mean {close[0]!r}?" if close else ""
        where = f"config key {key}: " if key else ""
        known_list = ", ".join(known) or "none"
        return f"{where}unknown {kind or self.kind} {name!r}{guess} (known: {known_list})"

    def problems(self, name: str, options: Mapping[str, Any], key: str) -> list[str]:
        """Every problem of the config options of entry ``name``, each naming ``<key>.<option>``
        (empty: fine). ``name`` must be registered (:meth:`lookup`)."""
        what = f"{self.kind.split()[-1]} {name!r}"
        return self._check_options(self.lookup(name, key), what, options, key)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self)

    def over(self, entries: MutableMapping[str, T]) -> Registry[T]:
        """A registry of this kind, with its checks, that reads and writes ``entries`` (taken
        as loaded): e.g. a copy a test swaps in to keep its throwaway entries to itself."""
        view = copy.copy(self)
        view._entries, view._state = entries, "loaded"
        return view

    def __getitem__(self, name: str) -> T:
        return self.lookup(name)

    def __setitem__(self, name: str, entry: T) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        self.load()
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<{self.kind} registry {sorted(self._entries)} ({self._state})>"


def load_plugins(paths: Iterable[str], root: str | Path = ".") -> None:
    """Import extra plug-in modules: each a ``.py`` file (relative to ``root``) or a module name.

    A plug-in registers methods, scorers or other registry entries as it is
    imported; each is imported once a process (a file whose import failed is tried again
    the next time, as Python does with modules). A missing file raises
    ``FileNotFoundError`` naming it.
    """
    for entry in paths:
        if entry.endswith(".py"):
            path = Path(entry) if Path(entry).is_absolute() else Path(root) / entry
            if not path.is_file():
                raise FileNotFoundError(f"config key plugins: file not found: {entry}")
            name = f"{PLUGIN_PREFIX}{path.stem}"
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        else:
            importlib.import_module(entry)


def load_job_plugins(job: Any) -> None:
    """Load the config's ``plugins`` in a rule script (``job``: its ``snakemake`` object).

    Every script calls this after :func:`compfair.worker.hand_over`; the files
    are relative to the project (the scripts' parent folder).
    """
    load_plugins(job.config.get("plugins") or [], Path(job.scriptdir).parent)


def plugin_file_of(entry: Any) -> str | None:
    """The plug-in file that defines ``entry`` (a registered class, an instance or a function),
    or None for the package's own entries and plug-ins given as module names."""
    target = entry if inspect.isclass(entry) or inspect.isfunction(entry) else type(entry)
    module = getattr(target, "__module__", "") or ""
    if not module.startswith(PLUGIN_PREFIX):
        return None
    return getattr(sys.modules.get(module), "__file__", None)
