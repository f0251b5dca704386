"""The package's import structure: one namespace, layers that import only downwards, no cycles,
and no function-level imports except of the heavy packages named in :mod:`robustprop.lazy`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from robustprop.lazy import HEAVY

ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top: a module may import modules of its own layer or of a layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("robustprop.lazy", "robustprop.properties"),
    ("robustprop.training",),
    ("robustprop.export",),
    ("robustprop", "robustprop.verify"),  # the namespace roots (docstrings, lazy API names)
    ("robustprop.verify.engine",),
    ("robustprop.verify.formats",),
    ("robustprop.verify.run",),
    ("robustprop.api",),
    ("robustprop.verify.report",),
    ("robustprop.verify.experiment",),
    ("robustprop.verify.cli",),
    ("robustprop.__main__",),
)


def _modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, file) of every module of the installed namespace, from the source tree."""
    folders = {"robustprop": ROOT / "robustprop"}
    for name in ("properties", "training", "export", "verify"):
        folders[f"robustprop.{name}"] = ROOT / name
    for package, folder in folders.items():
        for path in sorted(folder.rglob("*.py")):
            if package == "robustprop" and path.parent != folder:
                continue  # robustprop/<link> is one of the folders above
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join([package, *parts]), path


def _rank(module: str) -> int:
    best, rank = -1, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} is in no layer"
    return rank


def _imports(tree: ast.Module) -> Iterator[tuple[str, bool, bool, int]]:
    """(imported module, inside a function, under TYPE_CHECKING, line) for every import."""

    def visit(
        node: ast.AST, in_function: bool, typing_only: bool
    ) -> Iterator[tuple[str, bool, bool, int]]:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            typing = typing_only or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, in_function, typing_only, child.lineno
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    yield (
                        (full if full in MODULE_NAMES else child.module),
                        in_function,
                        (typing_only),
                        child.lineno,
                    )
            yield from visit(child, func, typing)

    yield from visit(tree, False, False)


MODULES = dict(_modules())
MODULE_NAMES = set(MODULES)


def _project(name: str) -> str | None:
    """The project module ``name`` refers to (its longest known prefix), else None."""
    while name:
        if name in MODULE_NAMES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_every_module_is_in_a_layer_and_the_namespace_is_complete() -> None:
    assert "robustprop.verify.engine.bounds" in MODULE_NAMES
    assert "robustprop.api" in MODULE_NAMES
    for name in MODULE_NAMES:
        _rank(name)


@pytest.mark.parametrize("name", sorted(MODULE_NAMES))
def test_imports_point_down_and_only_heavy_packages_are_imported_late(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    problems = []
    for imported, in_function, _typing, line in _imports(tree):
        top = imported.split(".")[0]
        if top in ("properties", "training", "export", "verify"):
            problems.append(f"line {line}: {imported} (import robustprop.{imported} instead)")
            continue
        target = _project(imported) if top == "robustprop" else None
        if in_function and top not in HEAVY:
            if target is not None or top == "robustprop":
                problems.append(f"line {line}: function-level import of {imported}")
            continue
        if target is not None and not _typing and _rank(target) > _rank(name):
            problems.append(f"line {line}: {imported} is in a higher layer than {name}")
    assert not problems, f"{MODULES[name]}:\n" + "\n".join(problems)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {name: set() for name in MODULE_NAMES}
    for name, path in MODULES.items():
        for imported, in_function, typing_only, _ in _imports(ast.parse(path.read_text("utf-8"))):
            target = _project(imported) if imported.startswith("robustprop") else None
            if target is not None and target != name and not in_function and not typing_only:
                graph[name].add(target)
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    out.append(component)
    return out


def test_no_module_is_over_500_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text("utf-8").splitlines())) > 500
    }
    assert not long, f"modules over 500 lines: {long}"


def test_every_package_declares_its_public_names() -> None:
    missing = [
        name
        for name, path in MODULES.items()
        if path.name == "__init__.py" and "__all__" not in path.read_text("utf-8")
    ]
    assert not missing, f"packages without __all__: {missing}"
