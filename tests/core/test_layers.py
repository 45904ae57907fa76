"""core/ points down: a module imports only from its own layer or the layers below it
(DESIGN.md, "Layers inside core/"). Every import counts, function-level ones included. And no
two core modules import each other at module level, directly or round a longer circle."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"

# Lowest first; each layer is a set of module prefixes.
LAYERS: list[set[str]] = [
    {"core.paths", "core.device", "core.registry", "core.pngcheck", "core.notices",
     "core.safezip"},
    {"core.tensors"},
    {"core.nets", "core.schedulers", "core.cards", "core.weights"},
    {"core.imageio"},
    {"core.jobs", "core.spec_check", "core.specs", "core.document"},
    {"core.data", "core.algorithms", "core.thirdparty", "core.sampling", "core.judges"},
    {"core.training"},
    {"core.pipelines", "core.model_manager", "core.catalog"},
    {"core.evaluation"},
    {"core.cli", "core.selftest", "core.__main__"},
]


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
            # ``from core.pkg import mod`` imports the module (or package) core.pkg.mod; core.pkg
            # counts only for a name defined in it, as for ``import core.pkg.mod``.
            folder = root.parent / base.replace(".", "/")
            modules = {f"{base}.{a.name}" for a in node.names
                       if (folder / f"{a.name}.py").exists()
                       or (folder / a.name / "__init__.py").exists()}
            found.update(modules)
            if len(modules) < len(node.names):
                found.add(base)
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
    ups = sorted(upward_imports())
    assert not ups, "imports that point up a layer:\n" + "\n".join(f"  {a} -> {b}" for a, b in ups)


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


def private_imports(folder: Path, root: Path = CORE) -> list[str]:
    """``module: name`` for every underscore name a module under ``folder`` imports from core."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core"):
                found += [f"{module_name(path, root)}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_")]
    return found


def test_cli_modules_share_only_public_names():
    """What two subcommands share lives in core/cli/common.py (or the module that owns it)
    under a public name; no module reaches for another's private helper."""
    assert private_imports(CORE / "cli") == []


def test_a_private_import_is_found(tmp_path):
    cli = tmp_path / "core" / "cli"
    cli.mkdir(parents=True)
    (cli / "latent.py").write_text("def f():\n    from core.cli.common import CliError, _run\n")
    assert private_imports(cli, tmp_path / "core") == ["core.cli.latent: core.cli.common._run"]


def test_core_has_no_import_cycles():
    cycle = import_cycle()
    assert not cycle, "core modules that import each other: " + " -> ".join(cycle)


def test_an_import_cycle_is_found(tmp_path):
    """Module-level imports make a circle; imports in functions and for type checking do not."""
    pkg = tmp_path / "core"
    (pkg / "evaluation").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "jobs.py").write_text("def f():\n    import core.evaluation.metrics\n")
    (pkg / "evaluation" / "__init__.py").write_text("")
    (pkg / "evaluation" / "metrics.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core import jobs\n"
        "from core.evaluation import evaluate\n")
    assert import_cycle(pkg) == []
    (pkg / "evaluation" / "evaluate.py").write_text("from . import metrics\n")
    assert import_cycle(pkg) == ["core.evaluation.evaluate", "core.evaluation.metrics",
                                 "core.evaluation.evaluate"]
