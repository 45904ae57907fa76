"""core/ points down: a module imports only from its own layer or the layers below it
(DESIGN.md, "Layers inside core/"). Every import counts, function-level ones included. And no
two core modules import each other at module level, directly or round a longer circle."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"

# Lowest first; each layer is a set of module prefixes.
LAYERS: list[set[str]] = [
    {"core.paths", "core.device", "core.registry", "core.pngcheck"},
    {"core.tensors"},
    {"core.nets", "core.schedulers", "core.weights"},
    {"core.imageio"},
    {"core.jobs", "core.spec_check", "core.specs"},
    {"core.data", "core.algorithms", "core.thirdparty", "core.sampling", "core.judges"},
    {"core.training"},
    {"core.pipelines", "core.model_manager"},
    {"core.evaluation"},
    {"core.cli", "core.cli_latent", "core.cli_scene", "core.cli_style", "core.selftest",
     "core.__main__"},
]

# Imports that still point up, each to be moved down; the test fails once one is gone too, so
# this list only shrinks.
PENDING = {
    ("core.training.cli", "core.cli"),
    ("core.training.cli", "core.evaluation"),
    ("core.training.cli", "core.evaluation.evaluate"),
    ("core.training.progress", "core.cli"),
}


def layer_of(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path, root: Path = CORE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = CORE, module_level: bool = False) -> set[str]:
    """The core modules ``path`` imports, at any depth of its code; with ``module_level``, only
    those its import runs (not inside functions, nor under ``if TYPE_CHECKING:``)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            # ``from core.pkg import mod`` imports the module core.pkg.mod too
            found.update(f"{base}.{a.name}" for a in node.names
                         if (root.parent / base.replace(".", "/") / f"{a.name}.py").exists())
        elif module_level and (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                or isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")):
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m.startswith("core.")}


def upward_imports() -> set[tuple[str, str]]:
    ups = set()
    for path in sorted(CORE.rglob("*.py")):
        name = module_name(path)
        if name == "core":
            continue
        for target in imported(path):
            if layer_of(target) > layer_of(name):
                ups.add((name, target))
    return ups


def test_core_imports_point_down():
    ups = upward_imports()
    new = sorted(ups - PENDING)
    assert not new, "imports that point up a layer:\n" + "\n".join(f"  {a} -> {b}" for a, b in new)
    gone = sorted(PENDING - ups)
    assert not gone, "no longer imported, drop from PENDING: " + ", ".join(map(str, gone))


def test_every_core_module_has_a_layer():
    for path in CORE.rglob("*.py"):
        if module_name(path) != "core":
            layer_of(module_name(path))


def test_an_upward_import_is_found(tmp_path):
    """The check reads function-level and relative imports too."""
    bad = tmp_path / "core" / "jobs.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from .pipelines import inpaint\n    import core.cli\n")
    found = imported(bad, tmp_path / "core")
    assert {"core.pipelines", "core.cli"} <= found
    assert layer_of("core.cli") > layer_of("core.jobs") < layer_of("core.pipelines")


def import_cycle(root: Path = CORE) -> list[str]:
    """One circle of module-level imports among the modules under ``root`` (``[a, b, a]``), or
    [] when there is none. Such a circle works only while every module of it happens to be
    imported in the right order."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {name: sorted(m for m in imported(path, root, module_level=True)
                          if m in paths and m != name)
             for name, path in paths.items()}
    done: set[str] = set()

    def walk(name: str, trail: list[str]) -> list[str]:
        if name in trail:
            return trail[trail.index(name):] + [name]
        if name in done:
            return []
        for target in graph[name]:
            if found := walk(target, [*trail, name]):
                return found
        done.add(name)
        return []

    for name in graph:
        if found := walk(name, []):
            return found
    return []


def test_core_has_no_import_cycles():
    cycle = import_cycle()
    assert not cycle, "core modules that import each other: " + " -> ".join(cycle)


def test_an_import_cycle_is_found(tmp_path):
    """Module-level imports make a circle; imports in functions and for type checking do not."""
    pkg = tmp_path / "core"
    (pkg / "evaluation").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "jobs.py").write_text("def f():\n    import core.evaluation.judges\n")
    (pkg / "evaluation" / "__init__.py").write_text("")
    (pkg / "evaluation" / "judges.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core import jobs\n"
        "from core.evaluation import evaluate\n")
    assert import_cycle(pkg) == []
    (pkg / "evaluation" / "evaluate.py").write_text("from . import judges\n")
    assert import_cycle(pkg) == ["core.evaluation.evaluate", "core.evaluation.judges",
                                 "core.evaluation.evaluate"]
