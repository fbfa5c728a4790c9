"""The public Python API: every public name is documented with an example that runs, and everything else is private
by name, so ``explorer.__all__`` and each module's ``__all__`` are the whole public surface."""

from __future__ import annotations

import ast
import doctest
import importlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

import explorer

PACKAGE = Path(explorer.__file__).resolve().parent
MODULES = sorted(".".join(path.relative_to(PACKAGE).with_suffix("").parts) for path in PACKAGE.rglob("*.py")
                 if path.stem not in {"__init__", "__main__"})
"""Every module, subpackages' included, by its name under ``explorer`` (``engines.base``)."""


def module_tree(module: str) -> ast.Module:
    return ast.parse(PACKAGE.joinpath(*module.split(".")).with_suffix(".py").read_text(encoding="utf-8"))


def declared_all(tree: ast.Module) -> list[str] | None:
    """Return the module's ``__all__`` as written (a literal list), or None when it has none."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


def defined_names(tree: ast.Module) -> list[str]:
    """Return the functions and classes defined at the module's top level (imports are not definitions)."""
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def imported_names(tree: ast.Module) -> set[str]:
    """Return the names the module imports at its top level (re-exports are documented where they are defined)."""
    return {
        alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }


def docstrings(tree: ast.Module) -> dict[str, str]:
    """Return each top-level name's docstring: a def's or class's own, or the string literal right after a constant's
    assignment (the attribute-docstring convention Sphinx and pdoc read)."""
    found: dict[str, str] = {}
    for index, node in enumerate(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = ast.get_docstring(node) or ""
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        else:
            targets = [node.target] if isinstance(node, ast.AnnAssign) else []
        following = tree.body[index + 1] if index + 1 < len(tree.body) else None
        text = ""
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            text = following.value.value if isinstance(following.value.value, str) else ""
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = text
    return found


def api_docstring(name: str) -> str:
    """Return the docstring of ``explorer.<name>``: a submodule's, or the name's in the module that defines it."""
    if name in explorer._SUBMODULES:
        return ast.get_docstring(module_tree(name)) or ""
    return docstrings(module_tree(explorer._WHERE[name].removeprefix("explorer.")))[name]


def test_import_explorer_stays_light():
    code = "import sys, explorer; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_every_public_name_resolves_and_is_in_its_modules_all():
    for name in explorer.__all__:
        assert getattr(explorer, name) is not None
    for module, names in explorer._PUBLIC.items():
        assert set(names) <= set(importlib.import_module(module).__all__), module


@pytest.mark.parametrize("name", explorer.__all__)
def test_public_name_has_a_docstring_with_an_example(name):
    text = api_docstring(name)
    assert text.strip(), f"explorer.{name} has no docstring"
    assert ">>>" in text, f"explorer.{name}'s docstring has no example"


def module_examples() -> list[tuple[str, str]]:
    """Return ``(module, name)`` for each name in a module's ``__all__`` whose docstring holds an example, beyond
    ``explorer.__all__`` (whose examples run above)."""
    found = []
    for module in MODULES:
        tree = module_tree(module)
        texts = docstrings(tree)
        found += [(module, name) for name in declared_all(tree) or []
                  if name not in explorer.__all__ and ">>>" in texts.get(name, "")]
    return found


def run_examples(text: str, label: str) -> None:
    test = doctest.DocTestParser().get_doctest(text, {}, label, None, 0)
    assert test.examples, f"{label}'s docstring has no example"
    output = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=output.write)
    assert result.failed == 0, output.getvalue()


@pytest.mark.parametrize("name", explorer.__all__)
def test_public_name_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save files write them here
    run_examples(api_docstring(name), f"explorer.{name}")


@pytest.mark.parametrize("module, name", module_examples())
def test_every_example_in_a_module_runs(module, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_examples(docstrings(module_tree(module))[name], f"explorer.{module}.{name}")


@pytest.mark.parametrize("module", MODULES)
def test_module_level_functions_and_classes_are_private_or_listed_in_all(module):
    tree = module_tree(module)
    public = set(declared_all(tree) or [])
    unlisted = [name for name in defined_names(tree) if not name.startswith("_") and name not in public]
    assert not unlisted, f"explorer.{module}: make these private (leading _) or list them in __all__: {unlisted}"


@pytest.mark.parametrize("module", MODULES)
def test_every_name_in_a_modules_all_exists_and_has_a_docstring(module):
    tree = module_tree(module)
    listed = declared_all(tree)
    assert listed is not None, f"explorer.{module} has no __all__"
    found = docstrings(tree)
    missing = [name for name in listed if name not in found and name not in imported_names(tree)]
    assert not missing, f"explorer.{module}.__all__ names what the module does not define: {missing}"
    undocumented = [name for name in listed if name in found and not found[name].strip()]
    assert not undocumented, f"explorer.{module}: document {undocumented}"
