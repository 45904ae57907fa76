"""Frozen entry of the console ``easel`` executable (installer/easel.spec): core.cli:main.

``multiprocessing.freeze_support()`` comes first: where workers are spawned (Windows, macOS)
a DataLoader render worker or a torch.distributed helper starts this executable again with
multiprocessing's arguments, and freeze_support runs the worker instead of the command line.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from core.cli import main

    sys.exit(main())
