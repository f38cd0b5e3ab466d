"""Plug-in files: loaded in every job, and found again as the inputs of the jobs that use them."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from compfair.compression import METHODS, get_method
from compfair.compression.methods.magnitude import GlobalMagnitude
from compfair.data.sources import SOURCES
from compfair.intrinsic import BENCHMARKS
from compfair.io import InputError
from compfair.plots import FIGURES, unregister_figure
from compfair.plugins import (
    PLUGIN_PREFIX,
    Registry,
    UnknownNameError,
    load_job_plugins,
    load_plugins,
    plugin_file_of,
)
from compfair.scoring import SCORERS

REPO = Path(__file__).resolve().parents[2]

PLUGIN = """
from compfair.compression import register_method
from compfair.compression.methods.magnitude import GlobalMagnitude
from compfair.plots import register_figure


@register_method("plugin_file_test")
class Halve(GlobalMagnitude):
    summary = "a throwaway method"


@register_figure("plugin_file_test", category="Quality")
def draw(tables, out_path, options):
    return None
"""


def test_a_job_loads_the_configs_plugin_files_and_knows_where_each_entry_came_from(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "workflow_scripts").mkdir(parents=True)
    (project / "plugins").mkdir()
    plugin = project / "plugins" / "plugin_file_test.py"
    plugin.write_text(PLUGIN)
    job = SimpleNamespace(
        config={"plugins": ["plugins/plugin_file_test.py"]},
        scriptdir=str(project / "workflow_scripts"),
    )
    try:
        load_job_plugins(job)  # relative to the project: the scripts' parent folder
        assert plugin_file_of(get_method("plugin_file_test")) == str(plugin)  # an instance
        assert plugin_file_of(METHODS["plugin_file_test"]) == str(plugin)  # a class
        assert plugin_file_of(FIGURES["plugin_file_test"].draw) == str(plugin)  # a function
        assert plugin_file_of(get_method("magnitude")) is None  # the package's own
        assert plugin_file_of(len) is None
        load_job_plugins(SimpleNamespace(config={"plugins": None}, scriptdir="."))  # none
    finally:
        METHODS.pop("plugin_file_test", None)
        unregister_figure("plugin_file_test")
        sys.modules.pop(f"{PLUGIN_PREFIX}plugin_file_test", None)


def test_every_rule_script_loads_the_plugins_before_anything_else() -> None:
    """So that a plug-in of any kind reaches every job (no script left out)."""
    scripts = sorted((REPO / "workflow_scripts").glob("*.py"))
    assert len(scripts) >= 17
    preamble = re.compile(
        r"^hand_over\(\).*\n\nfrom compfair.plugins import load_job_plugins\n\n"
        r"load_job_plugins\(snakemake\)",
        re.MULTILINE,
    )
    missing = [p.name for p in scripts if not preamble.search(p.read_text())]
    assert not missing, missing


# --------------------------------------------------------------------------- the registries

#: A plug-in file of each kind that registers one throwaway entry named ``{name}``.
THROWAWAY = {
    "compression method": """
from compfair.compression import register_method
from compfair.compression.methods.magnitude import GlobalMagnitude


@register_method("{name}")
class Throwaway(GlobalMagnitude):
    summary = "a throwaway method"
""",
    "prompt source": """
from compfair.data.sources import PromptSource, register_source


@register_source("{name}")
class Throwaway(PromptSource):
    def load(self, spec, seed, repo_root, config_key):
        return []
""",
    "intrinsic benchmark": """
from compfair.intrinsic import IntrinsicBenchmark, register_benchmark


@register_benchmark("{name}")
class Throwaway(IntrinsicBenchmark):
    load_items = score = metrics = item_rows = None
""",
    "toxicity scorer": """
from compfair.scoring import ToxicityScorer, register_scorer


@register_scorer("{name}")
class Throwaway(ToxicityScorer):
    def score(self, texts):
        return [0.0] * len(texts)
""",
    "figure": """
from compfair.plots import register_figure


@register_figure("{name}", category="Quality")
def throwaway(tables, out_path, options):
    return None
""",
}

#: Each registry, with what defines one of its entries (a figure's entry is its spec).
REGISTRIES: list[tuple[Registry[Any], Callable[[Any], Any]]] = [
    (METHODS, lambda cls: cls),
    (SOURCES, lambda cls: cls),
    (BENCHMARKS, lambda cls: cls),
    (SCORERS, lambda cls: cls),
    (FIGURES, lambda spec: spec.draw),
]


#: A registry, what defines one of its entries, and a writer of plug-in files.
Throwaway = tuple[Registry[Any], Callable[[Any], Any], Callable[[str], Path]]


@pytest.fixture(params=REGISTRIES, ids=lambda r: r[0].kind.replace(" ", "_"))
def throwaway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Throwaway]:
    """A registry, what defines its entries, and a writer of plug-in files that register
    ``zz_throwaway`` in it; afterwards, the entry and the plug-in modules are gone."""
    registry, defined_by = request.param
    kind = registry.kind.replace(" ", "_")
    written: list[str] = []

    def write(stem: str) -> Path:
        path = tmp_path / f"{kind}_{stem}.py"
        path.write_text(THROWAWAY[registry.kind].format(name="zz_throwaway"))
        written.append(f"{PLUGIN_PREFIX}{path.stem}")
        return path

    yield registry, defined_by, write
    registry.pop("zz_throwaway", None)
    for module in written:
        sys.modules.pop(module, None)
    assert "zz_throwaway" not in registry


def test_a_plugin_file_registers_an_entry_of_each_kind(throwaway: Throwaway) -> None:
    """One file registers a throwaway entry; it is read back by name, a misspelt name is
    answered with the likeliest one and the config key, a second file taking the name is
    refused naming both files, and the first file imported again is no clash."""
    registry, defined_by, write = throwaway
    first, second = write("first"), write("second")
    load_plugins([str(first)])
    assert "zz_throwaway" in registry and "zz_throwaway" in registry.names()
    assert plugin_file_of(defined_by(registry["zz_throwaway"])) == str(first)
    assert registry.lookup("zz_throwaway", "some.key") is registry["zz_throwaway"]

    with pytest.raises(UnknownNameError) as err:
        registry.lookup("zz_throwawy", "some.key")
    assert isinstance(err.value, InputError) and isinstance(err.value, KeyError)
    assert str(err.value).startswith(
        f"config key some.key: unknown {registry.kind} 'zz_throwawy'; "
        "did you mean 'zz_throwaway'? (known: "
    )
    with pytest.raises(KeyError, match="did you mean 'zz_throwaway'"):
        registry["zz_throwawy"]

    with pytest.raises(ValueError) as err:
        load_plugins([str(second)])
    message = str(err.value)
    assert message.startswith(f"{registry.kind} 'zz_throwaway' is already registered")
    assert f"by {first}:" in message and f"by {second}:" in message
    assert plugin_file_of(defined_by(registry["zz_throwaway"])) == str(first)

    sys.modules.pop(f"{PLUGIN_PREFIX}{first.stem}")
    load_plugins([str(first)])  # the same class (module, qualified name) again: no clash
    assert plugin_file_of(defined_by(registry["zz_throwaway"])) == str(first)


#: A package of built-in widgets: ``good`` registers one, ``bad`` fails while a flag file exists.
WIDGETS = {
    "__init__.py": """
from compfair.plugins import Registry

WIDGETS = Registry("widget", None, __name__, skip_private=True)
""",
    "good.py": """
from {package} import WIDGETS

WIDGETS.register("spanner")(len)
assert "spanner" in WIDGETS  # a read while loading reads what is there, and loads nothing
""",
    "bad.py": """
from pathlib import Path

if (Path(__file__).parent / "FAIL").exists():
    raise RuntimeError("bad widget")
""",
    "_private.py": "raise RuntimeError('never imported')\n",
}


def test_a_registry_loads_its_package_on_first_read_and_again_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = f"widgets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / package).mkdir()
    for file, text in WIDGETS.items():
        (tmp_path / package / file).write_text(text.format(package=package))
    (tmp_path / package / "FAIL").touch()
    monkeypatch.syspath_prepend(str(tmp_path))
    widgets = __import__(package).WIDGETS
    assert repr(widgets) == "<widget registry [] (unloaded)>"
    with pytest.raises(RuntimeError, match="bad widget"):
        len(widgets)
    with pytest.raises(RuntimeError, match="bad widget"):  # tried again, the error again
        widgets.names()
    (tmp_path / package / "FAIL").unlink()
    assert widgets.names() == ["spanner"] and widgets["spanner"] is len
    assert repr(widgets) == "<widget registry ['spanner'] (loaded)>"
    with pytest.raises(ValueError, match=r"'spanner' is already registered: .* by module builtins"):
        widgets.register("spanner")(max)
    for module in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[module]


def test_a_registry_over_a_copy_checks_like_the_registry_and_keeps_the_original() -> None:
    class Scratch(GlobalMagnitude):
        summary = "a throwaway method"

    entries = dict(METHODS)
    scratch = METHODS.over(entries)
    scratch.register("zz_scratch")(Scratch)
    assert entries["zz_scratch"] is Scratch and Scratch.name == "zz_scratch"
    assert "zz_scratch" not in METHODS
    with pytest.raises(TypeError, match="not a CompressionMethod subclass"):
        scratch.register("zz_other")(dict)
    with pytest.raises(ValueError, match="'rtn' is already registered"):
        scratch.register("rtn")(Scratch)


def test_options_are_checked_through_the_registrys_own_check() -> None:
    """Schema options (benchmarks: ``enabled`` is the workflow's) and ``__init__`` options
    (scorers) through one method, naming the keys."""
    assert BENCHMARKS.problems("stereoset", {"n": 3.0, "enabled": True}, "intrinsic.stereoset") == [
        "config key intrinsic.stereoset.n: 3.0 is not of type 'integer' (write 3, without a "
        "decimal point)"
    ]
    assert SCORERS.problems("profanity_check", {"bach_size": 8}, "scoring.scorer_options") == [
        "config key scoring.scorer_options.bach_size: scorer 'profanity_check' takes no option "
        "'bach_size' (it takes: batch_size)"
    ]
    with pytest.raises(UnknownNameError, match="config key prompts.x.source: unknown prompt"):
        SOURCES.problems("nope", {}, "prompts.x.source")
