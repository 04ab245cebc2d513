"""Each igkit package reads top-down: no import cycle among its own modules (issue #17).

Imports are read from the source with ast at any depth (inside functions and ``if TYPE_CHECKING``
blocks too): a cycle hidden behind an import inside a function still means two modules each need
the other, so neither can be read, tested or moved alone. One test per package, so each package
passes or fails on its own.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: where each top-level package's source lives (pyproject's ``package-dir``)
SOURCE_ROOTS = {"igkit": REPO / "core", "igkit.plugins": REPO / "plugins"}
#: packages that still have an import cycle, and which (their test is a strict xfail: once the cycle
#: is gone it fails until the entry is removed). Example entry:
#: ``"igkit.plugins.molecules": "chemprop_attribution <-> chemprop_model (issue #17 item 6)"``
KNOWN_CYCLES: dict[str, str] = {}

Graph = dict[str, set[str]]


def find_packages(roots: dict[str, Path]) -> dict[str, dict[str, Path]]:
    """``{package: {module: file}}`` for every folder with an ``__init__.py`` under each root (and
    every folder between); a package's own ``__init__`` is one of its modules, named as the package."""
    packages: dict[str, dict[str, Path]] = {}
    for root_name, root in roots.items():
        for init in sorted(root.rglob("__init__.py")):
            parts = init.parent.relative_to(root).parts
            if not all((root.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts))):
                continue
            package = ".".join((root_name, *parts))
            modules = {package: init}
            modules.update({f"{package}.{f.stem}": f for f in sorted(init.parent.glob("*.py"))
                            if f.name != "__init__.py"})
            packages[package] = modules
    return packages


def import_targets(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports anywhere in its file: ``from P import name``
    counts as importing ``P.name`` when that is a module, else ``P``."""
    here = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return {t for t in targets if t in known and t != module}


def package_graph(modules: dict[str, Path], known: set[str]) -> Graph:
    """Who imports whom among one package's modules (imports of other packages left out)."""
    return {name: import_targets(name, path, known) & modules.keys() for name, path in modules.items()}


def import_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per group of modules that import each other (Tarjan's
    strongly connected components of two or more modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(group, graph) for group in groups]


def _cycle_through(group: list[str], graph: Graph) -> list[str]:
    """A shortest import path from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {target: [start, target] for target in sorted(graph[start] & members)}
    queue = list(paths)
    while start not in paths:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return paths[start]


PACKAGES = find_packages(SOURCE_ROOTS)
KNOWN_MODULES = {name for modules in PACKAGES.values() for name in modules}


def test_every_package_is_checked():
    """The parametrisation below is not silently empty: the core, its subpackages and the three
    built-in plugins are all found, each with its modules."""
    assert {"igkit", "igkit.attribution", "igkit.run", "igkit.plugins.text", "igkit.plugins.vision",
            "igkit.plugins.molecules"} <= PACKAGES.keys()
    assert "igkit.plugins.text.domain" in PACKAGES["igkit.plugins.text"]
    assert set(KNOWN_CYCLES) <= PACKAGES.keys(), "KNOWN_CYCLES names a package that does not exist"


def test_a_cycle_through_a_function_level_or_from_dot_import_is_found(tmp_path):
    """The checker itself: ``b`` imports ``a`` only inside a function and ``c`` with ``from . import``;
    both close cycles; an import of another package never does."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg import a\n")
    (pkg / "a.py").write_text("from .b import f\nimport pkg.sub\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n    from . import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import f\n")
    (pkg / "d.py").write_text("from .a import g\n")
    packages = find_packages({"pkg": pkg})
    known = {name for modules in packages.values() for name in modules}
    graph = package_graph(packages["pkg"], known)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a", "pkg.c"}, "pkg.c": {"pkg.b"},
                     "pkg.d": {"pkg.a"}}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]
    (pkg / "b.py").write_text("from . import c\n")
    assert import_cycles(package_graph(packages["pkg"], known)) == [["pkg.b", "pkg.c", "pkg.b"]]
    assert import_cycles(package_graph(packages["pkg.sub"], known)) == []


@pytest.mark.parametrize("package", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_CYCLES[name]))
    if name in KNOWN_CYCLES else name
    for name in sorted(PACKAGES)])
def test_package_has_no_import_cycle(package):
    cycles = import_cycles(package_graph(PACKAGES[package], KNOWN_MODULES))
    assert not cycles, (f"{package} has import cycles (imports inside functions count): "
                        + "; ".join(" -> ".join(cycle) for cycle in cycles)
                        + ". Move what both modules need into a lower module that imports neither.")


def test_the_core_has_no_import_cycle_across_its_subpackages():
    """The core's subpackages read in layers too (contract → attribution → methods → run → front
    ends): no cycle among all of ``igkit``'s own modules, whichever subpackage each is in. The
    package ``igkit`` itself is left out: its ``__init__`` names the public API, imported on first
    use, and imports nothing when loaded."""
    core = {name: path for package, modules in PACKAGES.items() if not package.startswith("igkit.plugins")
            for name, path in modules.items() if name != "igkit"}
    cycles = import_cycles(package_graph(core, KNOWN_MODULES))
    assert not cycles, "; ".join(" -> ".join(cycle) for cycle in cycles)
