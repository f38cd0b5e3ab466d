"""The table-only modules start without torch: many small jobs import them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

# Modules behind the jobs that only read and write tables and figures.
LIGHT = [
    "compfair.tables.build",
    "compfair.benchmarks",
    "compfair.calibration",
    "compfair.config",
    "compfair.data",
    "compfair.io",
    "compfair.metrics",
    "compfair.plots",
    "compfair.quality",
    "compfair.scoring",
    "compfair.scoring.scorers",
    # The registries the Snakefile reads to plan a study.
    "compfair.variants",
    "compfair.compression",
    "compfair.data.sources",
    "compfair.tables.specs",
    "compfair.tables.files",
]


@pytest.mark.parametrize("module", LIGHT)
def test_light_module_does_not_import_torch(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing {module} also imports {out}"


# --------------------------------------------------------------------------- the import graph

PACKAGE = Path(__file__).resolve().parents[2] / "compfair"


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
