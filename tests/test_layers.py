"""The package's shape: no module of ``explorer`` reaches itself through its imports.

Every import counts, those inside functions and under ``TYPE_CHECKING`` too: an import moved into a function hides a
circle from Python's loader, not from a reader, who can no longer tell which module is built on which.
"""

from __future__ import annotations

import ast
from pathlib import Path

import explorer

PACKAGE = Path(explorer.__file__).resolve().parent


def explorer_imports(path: Path) -> set[str]:
    """The other ``explorer`` modules ``path`` imports anywhere in its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "explorer":
            found.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").is_file())
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("explorer."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("explorer."))
    return found - {path.stem, "__init__"}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each module that reaches itself, with one path by which it does."""
    found = []
    for start in sorted(graph):
        paths = [[start]]
        seen: set[str] = set()
        while paths:
            path = paths.pop()
            for module in sorted(graph.get(path[-1], ())):
                if module == start:
                    found.append([*path, start])
                    paths.clear()
                    break
                if module not in seen:
                    seen.add(module)
                    paths.append([*path, module])
    return found


def test_no_module_reaches_itself_through_its_imports():
    graph = {path.stem: explorer_imports(path) for path in PACKAGE.glob("*.py")}
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle_through_another_module():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"], ["b", "c", "a", "b"],
                                                                        ["c", "a", "b", "c"]]
