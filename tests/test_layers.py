"""The core's modules import each other without cycles — function-level imports included.

Imports under ``if TYPE_CHECKING:`` are left out (they never run); a module bound with
``on_first_use(globals(), "_name")`` counts as imported (it is, on first use). Each package's
``__init__`` re-exports its modules' names, so it stands above them; a module
importing a name from its own package's ``__init__`` counts as importing the
module that defines it only when that is resolvable statically (``from . import x``
names a module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import daglite_core

ROOT = Path(daglite_core.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["daglite_core", *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "on_first_use" and len(node.args) == 2:
            target = node.args[1]  # _lazy.on_first_use(globals(), "_module"): imported on first use
            if isinstance(target, ast.Constant) and f"{package}.{target.value}" in modules:
                found.add(f"{package}.{target.value}")
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(0, node.level - 1)):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
                elif target in modules:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {_module_name(p): _imports(p, modules) for p in paths}
    # A package's __init__ re-exports: importing it is not a dependency of its own modules.
    for name, deps in graph.items():
        deps -= {d for d in deps if name.startswith(d + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], dict.fromkeys(graph, 0)
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif state.get(dep) == 0:
                walk(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            walk(node)
    return cycles


def test_the_core_has_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_function_level_imports() -> None:
    graph = _graph()
    # _builtin imports the process backend inside a function.
    assert "daglite_core._process" in graph["daglite_core._builtin"]
