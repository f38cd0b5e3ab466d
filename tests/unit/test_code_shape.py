"""The shape of the code: every function fits on a screen (STYLE.md, "Functions that fit on a
screen"), in the package, the rule scripts, the bench scripts and the tests."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("compfair", "workflow_scripts", "bench", "tests")
#: Lines from ``def`` to the last line of the body (decorators not counted). Set when the check
#: was added, at today's longest (compfair/distill.py's ``distill``, 79 lines); lower it as the
#: longest functions are split.
MAX_LINES = 80
#: Folders held to a tighter limit, which they already meet.
TIGHTER = {"compfair/data/": 60}


def function_lengths(root: Path, folders: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """``(file:line, name, lines)`` of every function and method (nested ones too) in the
    ``.py`` files under ``folders`` of ``root``."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    found.append((f"{where}:{node.lineno}", node.name, lines))
    return found


def too_long(found: list[tuple[str, str, int]]) -> list[str]:
    """The functions of ``found`` over their folder's limit, longest first."""
    over = []
    for where, name, lines in found:
        limit = min([MAX_LINES, *(n for prefix, n in TIGHTER.items() if where.startswith(prefix))])
        if lines > limit:
            over.append((lines, f"{where} {name}: {lines} lines (limit {limit})"))
    return [text for _, text in sorted(over, reverse=True)]


def test_every_function_fits_on_a_screen() -> None:
    found = function_lengths(REPO, FOLDERS)
    assert len(found) > 1000  # the walk saw the tree
    assert too_long(found) == []


def test_too_long_names_file_line_and_limit(tmp_path: Path) -> None:
    def body(n: int) -> str:
        return "\n".join(f"    x = {i}" for i in range(n))

    (tmp_path / "compfair" / "data").mkdir(parents=True)
    (tmp_path / "compfair" / "long.py").write_text(
        f"def long():\n{body(MAX_LINES)}\n\n\ndef short():\n    pass\n"
    )
    (tmp_path / "compfair" / "data" / "mid.py").write_text(f"def mid():\n{body(60)}\n")
    found = function_lengths(tmp_path, ("compfair",))
    assert too_long(found) == [
        f"compfair/long.py:1 long: {MAX_LINES + 1} lines (limit {MAX_LINES})",
        "compfair/data/mid.py:1 mid: 61 lines (limit 60)",
    ]
