"""Checks that installer/windows/build.ps1 runs with the build venv's Python.

The build script keeps its Python code here rather than in ``python -c "..."`` arguments:
Windows PowerShell 5.1 does not escape double quotes inside arguments to native programs, so
such code reaches python.exe garbled. Each command is silent on success unless it reports
something, and says what is wrong on failure (exit status 1 or a message):

    python buildenv.py check-python        Python 3.11 or newer
    python buildenv.py has-torch           exit status 0 when torch can be imported, else 1
    python buildenv.py check-torch KIND    the torch is the build asked for (cpu or cuda)
    python buildenv.py version             Easel's version, from pyproject.toml
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
MIN_PYTHON = (3, 11)


def check_python() -> int:
    if sys.version_info < MIN_PYTHON:
        print(f"buildenv: Easel needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer; "
              f"{sys.executable} is {sys.version.split()[0]} (pass -Python PATH)",
              file=sys.stderr)
        return 1
    return 0


def has_torch() -> int:
    return 0 if importlib.util.find_spec("torch") is not None else 1


def check_torch(kind: str) -> int:
    import torch

    cuda = torch.version.cuda
    print(f"torch {torch.__version__} (CUDA {cuda or 'none'})")
    if (kind == "cuda") != bool(cuda):
        print(f"buildenv: asked for a {kind} torch, got {torch.__version__}", file=sys.stderr)
        return 1
    return 0


def version() -> int:
    import tomllib  # here, so that check-python can speak on an older Python

    with open(ROOT / "pyproject.toml", "rb") as f:
        print(tomllib.load(f)["project"]["version"])
    return 0


def main(argv: list[str]) -> int:
    commands = {"check-python": check_python, "has-torch": has_torch, "version": version}
    if len(argv) == 2 and argv[0] == "check-torch" and argv[1] in ("cpu", "cuda"):
        return check_torch(argv[1])
    if len(argv) == 1 and argv[0] in commands:
        return commands[argv[0]]()
    print("usage: buildenv.py check-python | has-torch | check-torch cpu|cuda | version",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
