"""Frozen entry of the windowed ``easel-gui`` executable (installer/easel.spec): desktop.app:main.

A windowed executable on Windows and macOS has no console: PyInstaller sets ``sys.stdout`` and
``sys.stderr`` to None, and a stray ``print`` or a log handler would fail on them, so they go
to the null device (the app logs to its log folder). ``freeze_support()`` as in the console
entry: a spawned worker of this executable must run the worker, not open a second window.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    from desktop.app import main

    sys.exit(main())
