"""Who may import whom: the table of docs/architecture.md, checked on every module with ``ast``."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "facegate"

# layer -> the layers (or single modules) it may import besides itself and the ``facegate`` root
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "vision": {"core"},
    "gallery": {"core", "vision.types"},  # decisions weigh the face's measured quality
    "store": {"core"},
    "sources": {"core", "vision.image", "vision.errors"},  # frames in: no recognition, no storage
    "stream": {"core", "vision.types", "gallery.decision"},
    "events": {"core"},
    "service": {"core", "config", "vision", "gallery", "store", "stream", "events", "sources"},
    # adapters: the service tier, the settings, and the types of lower layers they render
    "api": {
        "core",
        "config",
        "service",
        "web",
        "vision.types",
        "vision.errors",
        "gallery.decision",
        "store.records",
        "stream.types",
    },
    "cli": {
        "core",
        "config",
        "service",
        "api.app",
        "api.server",
        "vision.types",
        "vision.draw",
        "gallery.decision",
        "store.records",
    },
    "web": set(),
    "__main__": {"cli"},
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str, is_package: bool, root: Path) -> set[str]:
    """Every facegate module this module imports, anywhere in it (function bodies included)."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # ``from facegate.x import y`` may name a module y
                candidate = f"{base}.{alias.name}"
                sub = root.parent.joinpath(*candidate.split("."))
                found.add(candidate if sub.with_suffix(".py").exists() or sub.is_dir() else base)
    return {name for name in found if name == "facegate" or name.startswith("facegate.")}


def _allowed(layer: str, target: str) -> bool:
    rest = target.removeprefix("facegate").lstrip(".")
    if not rest:
        return True  # the root package: the version string
    if rest.split(".")[0] == layer:
        return True
    return any(rest == a or rest.startswith(f"{a}.") for a in ALLOWED[layer])


def violations(root: Path) -> list[str]:
    """``module imports target`` for every import across the table, under the package at ``root``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        layer = module.split(".")[1] if "." in module else ""
        if not layer or "migrations" in path.parts:
            continue  # the root package; Alembic's scripts are loaded by path
        if layer not in ALLOWED:
            out.append(f"{module}: layer {layer!r} is not in the table")
            continue
        tree = ast.parse(path.read_text(), str(path))
        for target in sorted(_imports(tree, module, path.name == "__init__.py", root)):
            if not _allowed(layer, target):
                out.append(f"{module} imports {target}")
    return out


def test_every_module_imports_along_the_table():
    assert violations(PACKAGE) == []


def test_a_bad_import_is_caught(tmp_path):
    """The same check on a copy of the package with one module importing upward."""
    copy = tmp_path / "facegate"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    (copy / "store" / "upward.py").write_text("def f():\n    from facegate.gallery.index import Gallery\n")
    (copy / "api" / "direct.py").write_text("from facegate.store.repository import Store\n")
    (copy / "vision" / "relative.py").write_text("from ..service import runtime\n")
    assert violations(copy) == [
        "facegate.api.direct imports facegate.store.repository",
        "facegate.store.upward imports facegate.gallery.index",
        "facegate.vision.relative imports facegate.service.runtime",
    ]


def test_the_table_has_no_cycles():
    """No layer may reach back to itself through others (the flow goes one way)."""
    graph = {layer: {a.split(".")[0] for a in allowed} - {layer} for layer, allowed in ALLOWED.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [layer for layer in graph if reaches(layer, layer, set())] == []
