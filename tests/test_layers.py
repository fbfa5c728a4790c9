"""The package's shape: layers that build on one another and never in a circle, Streamlit only in the app layer,
session keys spelt in one place.

Every import counts, those inside functions and under ``TYPE_CHECKING`` too: an import moved into a function hides a
circle from Python's loader, not from a reader, who can no longer tell which module is built on which. An import
inside a function is kept for what it defers: a package the importing module does not load already (torch,
Streamlit, scipy...), so a command or page that never needs it never pays for it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import explorer

PACKAGE = Path(explorer.__file__).resolve().parent
ROOT = PACKAGE.parent
LAYERS = ("engines", "app", "bench")
"""The subpackages; every other module of ``explorer`` is a layer of its own for the circle check."""
CORE = ("errors", "paths", "hub", "cache", "voices", "attributes", "analysis", "recipe", "reports", "charts")
"""The numpy core and what it stands on: none of it imports torch, Streamlit or any module above it."""
HEAVY = {"torch", "kokoro", "misaki", "transformers", "onnx", "onnxruntime", "streamlit", "scipy", "sklearn", "pandas",
         "altair", "faster_whisper", "resemblyzer", "huggingface_hub", "soundfile", "sounddevice", "psutil"}
"""Packages whose import costs enough to defer (a second or more for some): an import inside a function must bring
in one of these that the importing module does not load already."""
MUST_NOT_IMPORT = {
    "engines": {"synth", "meters", "sweep", "architecture", "app", "bench", "cli", "bench_cli", "synth_cli"},
    "bench": {"app", "cli", "bench_cli", "synth_cli"},
    "app": {"cli", "bench_cli", "synth_cli"},
}
"""What each subpackage's docstring says it never builds on."""
KEY_CALLS = {"get", "setdefault", "pop"}


def module_name(path: Path) -> str:
    """``explorer/engines/base.py`` -> ``engines.base``; a package's ``__init__.py`` -> the package's name."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py") if path.name != "__main__.py"}


def _target(module: str, name: str | None = None) -> str:
    """The module an import names: ``from explorer.engines import base`` is ``engines.base``, ``from explorer.engines
    import load_engine`` is ``engines``."""
    if name is not None and (f"{module}.{name}" if module else name) in MODULES:
        return f"{module}.{name}" if module else name
    return module


def imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Return the outside packages and the ``explorer`` modules imported anywhere in ``tree``."""
    outside, inside = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "explorer" or alias.name.startswith("explorer."):
                    inside.add(_target(alias.name.partition(".")[2]))
                else:
                    outside.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "explorer" or node.module.startswith("explorer."):
                inside.update(_target(node.module.partition(".")[2], alias.name) for alias in node.names)
            else:
                outside.add(node.module.split(".")[0])
    return outside, inside - {""}


def top_level(tree: ast.Module) -> ast.Module:
    """The statements that run when the module is imported (``TYPE_CHECKING`` blocks and function bodies do not)."""
    body = [node for node in tree.body if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))]
    return ast.Module([node for node in body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                       ast.ClassDef))], [])


TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}
GRAPH = {name: imports(tree)[1] - {name} for name, tree in TREES.items()}


def loads_on_import(module: str, seen: set[str] | None = None) -> set[str]:
    """The heavy packages importing ``module`` loads: its own top-level imports', its packages' and those of the
    ``explorer`` modules it imports at the top level."""
    seen = set() if seen is None else seen
    if module in seen or module not in TREES:
        return set()
    seen.add(module)
    outside, inside = imports(top_level(TREES[module]))
    packages = {".".join(module.split(".")[:depth]) for depth in range(1, module.count(".") + 1)}
    return (outside & HEAVY).union(*(loads_on_import(other, seen) for other in inside | packages))


def layer(module: str) -> str:
    return module.split(".")[0]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each node that reaches itself, with one path by which it does."""
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
    assert circles(GRAPH) == []


def test_no_layer_reaches_itself_through_its_imports():
    """Taken whole, a subpackage sits above or below every other module, never both."""
    layers: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        above = {layer(other) for other in imported} - {layer(module)}
        layers.setdefault(layer(module), set()).update(above)
    assert circles(layers) == []


def test_the_circle_finder_finds_a_circle_through_another_module():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"], ["b", "c", "a", "b"],
                                                                        ["c", "a", "b", "c"]]


@pytest.mark.parametrize("subpackage", sorted(MUST_NOT_IMPORT))
def test_a_layer_never_builds_on_what_its_docstring_rules_out(subpackage):
    docstring = ast.get_docstring(TREES[subpackage]) or ""
    assert docstring.strip(), f"explorer/{subpackage}/__init__.py says nothing of what the layer owns"
    reached = {f"{module} -> {other}" for module, imported in GRAPH.items() if layer(module) == subpackage
               for other in imported if layer(other) in MUST_NOT_IMPORT[subpackage]}
    assert not reached


def test_only_the_app_layer_imports_streamlit():
    outside_app = [module for module, tree in TREES.items()
                   if layer(module) != "app" and "streamlit" in imports(tree)[0]]
    assert outside_app == []


def test_the_core_builds_only_on_the_core():
    above = {f"{module} -> {other}" for module in CORE for other in GRAPH[module] if other not in CORE}
    assert not above


def test_importing_the_core_loads_neither_torch_nor_streamlit():
    code = (f"import sys; import {', '.join(f'explorer.{module}' for module in CORE)}; "
            "print(sorted({'torch', 'streamlit', 'onnxruntime', 'kokoro'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_import_inside_a_function_defers_a_heavy_package():
    needless = []
    for module, tree in TREES.items():
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for other in imports(function)[1]:
                    if other != module and not loads_on_import(other) - loads_on_import(module):
                        needless.append(f"{module}.{function.name} imports {other}")
    assert needless == []


def test_the_heavy_import_finder_sees_through_the_explorer_modules_imported():
    assert "torch" in loads_on_import("engines.model") and "torch" not in loads_on_import("engines")
    assert "streamlit" in loads_on_import("app.ui") and "pandas" in loads_on_import("reports")  # through charts
    assert "pandas" not in loads_on_import("voices")  # a command speaking one voice does not pay for it


def session_keys_spelt_out(tree: ast.AST) -> list[str]:
    """String literals (or f-strings) used as a session-state key: ``key=``, ``session_state[...]`` and
    ``session_state.get/setdefault/pop(...)``."""
    spelt = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            spelt += [ast.unparse(word.value) for word in node.keywords
                      if word.arg == "key" and isinstance(word.value, (ast.Constant, ast.JoinedStr))]
            if isinstance(node.func, ast.Attribute) and node.func.attr in KEY_CALLS and node.args \
                    and "session_state" in ast.unparse(node.func.value) \
                    and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                spelt.append(ast.unparse(node.args[0]))
        elif isinstance(node, ast.Subscript) and "session_state" in ast.unparse(node.value) \
                and isinstance(node.slice, (ast.Constant, ast.JoinedStr)):
            spelt.append(ast.unparse(node.slice))
    return spelt


def test_pages_and_the_app_layer_name_session_keys_only_through_explorer_app_state():
    files = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py")),
             *(path for name, path in MODULES.items() if layer(name) == "app" and name != "app.state")]
    spelt = {str(path.relative_to(ROOT)): keys for path in files
             if (keys := session_keys_spelt_out(ast.parse(path.read_text(encoding="utf-8"))))}
    assert spelt == {}


def test_the_key_finder_sees_every_way_a_page_names_a_key():
    code = ('st.text_input("x", key="a"); st.session_state["b"]; st.session_state.get(f"c_{i}"); '
            'st.session_state.setdefault("d", 1); st.button("y", key=state.E)')
    assert sorted(session_keys_spelt_out(ast.parse(code))) == ["'a'", "'b'", "'d'", "f'c_{i}'"]
