"""The module graph has no cycles, counting imports hidden inside functions.

Every ``.py`` file of a package is parsed with :mod:`ast`; every ``import`` and
``from ... import`` statement anywhere in it (module level, functions, methods,
``if TYPE_CHECKING`` blocks) is an edge to the module it names. ``from pkg
import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
Importing ``a.b.c`` is an edge to ``a.b.c`` only, not to the packages above it
(whose ``__init__`` Python also runs): otherwise every package whose
``__init__`` re-exports its submodules would count as a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["blursynth", "reference_models"]


def module_files(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package``."""
    root = REPO / package
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Every module name ``path`` imports, at any depth, with relative imports resolved."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    files = module_files(package)
    return {module: {name for name in imported_names(path, module, path.name == "__init__.py")
                     if name in files and name != module}
            for module, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state = dict.fromkeys(graph, 0)  # 0 unvisited, 1 on the current path, 2 done
    for start in sorted(graph):
        if state[start]:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_cycle_finder_sees_a_cycle_through_a_function_body(tmp_path):
    """The checker itself: a cycle made only by an import inside a function is found."""
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"p.a", "p.b", "p.c"}
    assert find_cycle({"p.a": {"p.b"}, "p.b": set()}) is None
    src = tmp_path / "m.py"
    src.write_text("import os\n\ndef f():\n    from p import b\n    from .c import x\n")
    assert {"p.b", "p.c.x", "p.c", "os", "p"} <= imported_names(src, "p.m", is_package=False)




def readme_layout(package: str) -> set[str]:
    """Paths under ``package/`` listed in the README's Layout block (folders end in ``/``)."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    paths, parents = set(), []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        parents = parents[:depth] + [name]
        if parents[0] == f"{package}/" and depth:
            paths.add("".join(parents[1:]))
    return paths


# Packages whose README layout lists their modules one by one.
LAYOUT_PACKAGES = ["blursynth", "reference_models"]


@pytest.mark.parametrize("package", LAYOUT_PACKAGES)
def test_readme_layout_lists_every_module_and_nothing_else(package):
    """Every module is listed, or sits in a listed folder without listed children."""
    listed = readme_layout(package)
    root = REPO / package
    assert listed, f"no Layout block under {package}/ in README.md"
    for entry in listed:
        assert (root / entry).exists(), f"README.md lists {package}/{entry}, which does not exist"
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if path.name == "__init__.py" and rel != "__init__.py":
            continue  # a package is listed as its folder
        if rel == "__init__.py":
            continue
        covered = rel in listed or any(
            rel.startswith(folder) and not any(e != folder and e.startswith(folder) for e in listed)
            for folder in listed if folder.endswith("/"))
        assert covered, f"{package}/{rel} is not in README.md's Layout"


def package_of(module: str) -> str:
    """The room a module lives in: its subpackage (``blursynth.run``), or itself when it sits at the top."""
    parts = module.split(".")
    return ".".join(parts[:2])


def folders(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A module graph collapsed into rooms (:func:`package_of`): room -> the other rooms it imports."""
    rooms: dict[str, set[str]] = {}
    for module, targets in graph.items():
        room = package_of(module)
        rooms.setdefault(room, set()).update(package_of(t) for t in targets if package_of(t) != room)
    return rooms


def test_folders_collapse_modules_into_their_rooms():
    """The checker itself: two modules of different folders importing each other's folder make a cycle."""
    assert package_of("blursynth.run.engine") == "blursynth.run"
    assert package_of("blursynth.errors") == "blursynth.errors"
    assert package_of("blursynth") == "blursynth"
    graph = {"p.a.x": {"p.b.y"}, "p.b.z": {"p.a.w"}, "p.a.w": set(), "p.b.y": set()}
    assert find_cycle(graph) is None
    assert find_cycle(folders(graph)) is not None  # the folders p.a and p.b need each other


@pytest.mark.parametrize("rooms", ["modules", "folders"])
@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package, rooms):
    """No module imports itself round in a circle; folders (stages) import one way too."""
    graph = import_graph(package)
    if rooms == "folders":
        graph = folders(graph)
    assert len(graph) > 3
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle between the {rooms} of {package}: {' -> '.join(cycle)}"
