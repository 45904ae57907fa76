"""The ``easel`` command line: headless runs of the same pipelines the desktop app uses.

``easel`` with no subcommand opens the desktop app; with a subcommand it never imports Qt.
Exit codes: 0 ok, 1 internal error (or failed verification), 2 bad input, 130 cancelled.
Errors are one line on stderr; ``EASEL_DEBUG=1`` adds the traceback.

Heavy modules (torch, the pipelines) are imported inside the subcommands, so ``--help`` and
``--version`` answer at once. app.py builds the parser and runs a command; each subject's
module (inpaint, latent, train, ...) adds its subcommands; common.py holds what they share.
"""

from __future__ import annotations

from core.cli.app import main

__all__ = ["main"]
