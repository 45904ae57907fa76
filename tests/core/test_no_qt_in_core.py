"""core/ must run headless (CLI, training, CI without a display), so it never imports Qt."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
QT_MODULES = ("PySide6", "PySide2", "PyQt6", "PyQt5", "shiboken6", "shiboken2", "qtpy")


def _is_qt(module: str) -> bool:
    return module.split(".")[0] in QT_MODULES


def _qt_imports(source: str, filename: str) -> list[str]:
    """Every Qt import in ``source`` (at any depth: module level, functions, try blocks)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__")):
            names = [node.args[0].value]
        else:
            continue
        found += [f"{filename}:{node.lineno} imports {n}" for n in names if _is_qt(n)]
    return found


def test_the_scanner_finds_qt_imports():
    src = ("import os\nimport PySide6.QtCore\ndef f():\n    from PyQt5 import QtGui\n"
           "importlib.import_module('shiboken6')\nfrom core import jobs\n")
    assert [s.split(" imports ")[1] for s in _qt_imports(src, "x.py")] == [
        "PySide6.QtCore", "PyQt5", "shiboken6"]


def test_no_core_source_imports_qt():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 5
    offenders = [hit for f in files
                 for hit in _qt_imports(f.read_text(encoding="utf-8"), str(f.relative_to(REPO)))]
    assert not offenders, "core/ must not import Qt:\n" + "\n".join(offenders)


def test_importing_every_core_module_loads_no_qt(tmp_path):
    code = """
import importlib, pkgutil, sys
import core
failed = []
for info in pkgutil.walk_packages(core.__path__, "core."):
    if info.name.split(".")[-1] == "__main__":
        continue  # running it would start the command line
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
qt = sorted(m for m in sys.modules if m.split(".")[0] in QT)
print("imported", sum(1 for m in sys.modules if m.startswith("core.")))
assert not failed, failed
assert not qt, f"importing core loaded Qt modules: {qt}"
"""
    env = {**os.environ, "EASEL_HOME": str(tmp_path / "home")}  # in case a module touches it
    proc = subprocess.run([sys.executable, "-c", f"QT = {QT_MODULES!r}\n{code}"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
