"""The import graph of galib is acyclic and points one way (down the layers of galib/__init__.py).

The graph is read statically with ``ast`` from every ``galib/**/*.py``: a module is named by its
dotted path (a package's ``__init__.py`` by the package name), and an import of a package means
its ``__init__``. ``from . import x`` inside a package imports ``galib.pkg.x`` only; ``from .x
import y`` imports ``galib.pkg.x`` and also ``galib.pkg.x.y`` when that is a module.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import galib

PKG_DIR = Path(galib.__file__).resolve().parent
ROOT = PKG_DIR.parent

# Lowest first; a module may import from its own layer or a lower one.
LAYERS = [["devices", "io", "paths"], ["groups", "datasets"], ["pairs"], ["models"], ["losses"],
          ["train", "distributed"], ["evaluation"], ["experiments"], ["studies"], ["notebook"], ["tools"]]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
BASE_ALLOWED = {"galib.devices", "galib.io"}      # what a group/dataset leaf may use besides its base


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _files() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG_DIR.rglob("*.py"))}


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """The galib modules that ``name`` (at ``path``) imports, anywhere in the file."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        if target in modules:
            found.add(target)
        elif target.startswith("galib"):                 # galib.x.y where y is not a module: x
            parent = target.rpartition(".")[0]
            if parent in modules:
                found.add(parent)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "galib" or alias.name.startswith("galib."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
                if not (target == "galib" or target.startswith("galib.")):
                    continue
            if node.module is not None:
                add(target)                                # from .x import y: imports .x
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    found.add(sub)                         # ... and .x.y when y is a module
                elif node.module is None:
                    add(target)                            # from . import NAME (not a module)
    found.discard(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = _files()
    modules = set(files)
    return {name: _imports(name, path, modules) for name, path in files.items()}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_is_in_a_layer(graph):
    assert {"galib.groups", "galib.datasets", "galib.pairs", "galib.train",
            "galib.groups.base", "galib.datasets.base", "galib.tools.pipeline"} <= set(graph)
    unplaced = sorted(m for m in graph if m != "galib" and _top(m) not in LAYER_OF)
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


def test_no_import_cycles(graph):
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"import cycle (A -> B: A imports B): {' -> '.join(reversed(err.args[1]))}")
    assert set(order) == set(graph)


def test_imports_point_down_the_layers(graph):
    bad = []
    for module, targets in graph.items():
        if module == "galib":                              # the package's own table: exempt
            continue
        here = LAYER_OF[_top(module)]
        for t in targets:
            there = LAYER_OF[_top(t)] if _top(t) else len(LAYERS)    # galib itself is the top
            if there > here:
                bad.append(f"{module} (layer {here}) imports {t} (layer {there})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_groups_and_datasets_are_independent(graph):
    bad = [f"{m} imports {t}" for m, targets in graph.items() for t in targets
           if {_top(m), _top(t)} == {"groups", "datasets"}]
    assert not bad, "\n".join(sorted(bad))


@pytest.mark.parametrize("pkg", ["groups", "datasets"])
def test_leaves_use_only_their_base(graph, pkg):
    table, base = f"galib.{pkg}", f"galib.{pkg}.base"
    leaves = [m for m in graph if m.startswith(table + ".") and m != base]
    assert leaves, f"no leaf modules found under {table}"
    bad = [f"{m} imports {t}" for m in leaves for t in graph[m] if t not in {base} | BASE_ALLOWED]
    assert not bad, "\n".join(sorted(bad))


def test_every_module_imports_in_dependency_order(graph):
    order = list(TopologicalSorter(graph).static_order())            # dependencies first
    script = "\n".join(["import importlib", f"for name in {order!r}:",
                        "    importlib.import_module(name)", "print('ok', len(" + repr(order) + "))"])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip() == f"ok {len(order)}"


def test_tools_do_not_import_the_notebook_layer(graph):
    """Paths and provenance live on the ground floor (galib.paths), a notebook's parameters with the
    studies (galib.studies.params): the command lines need nothing of the notebooks' kernel side."""
    bad = [f"{m} imports {t}" for m, targets in graph.items() if _top(m) == "tools"
           for t in targets if _top(t) == "notebook"]
    assert not bad, "\n".join(sorted(bad))


def _private_uses(path: Path, modules: set[str]) -> list[str]:
    """``from galib.x import _name`` and ``x._name`` where ``x`` is an imported galib module."""
    tree = ast.parse(path.read_text(), str(path))
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("galib")):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"imports {a.name} from {'.' * node.level}{node.module or ''}")
                elif node.module is None or f"{node.module}.{a.name}".split(".")[-1] == a.name:
                    aliases.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("galib")}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"uses {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    files = _files()
    bad = [f"{name}: {use}" for name, path in files.items() for use in _private_uses(path, set(files))]
    assert not bad, "\n".join(sorted(bad))
