"""The ``easel`` parser, and ``main``: one command run, every failure turned into one line on
stderr and an exit code (see core/cli/__init__.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from pathlib import Path

from core.cli import (
    info,
    inpaint,
    judge,
    latent,
    layers,
    models,
    rerun,
    scene,
    style,
    train,
    upscale,
)
from core.cli.common import PROG, CliError, error
from core.imageio import versions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Easel, an offline generative image studio. "
        "With no command it opens the desktop app.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {versions()['easel']}")
    parser.add_argument("--device", default=None,
                        help="auto, cuda, mps or cpu (default: $EASEL_DEVICE, else the best)")
    parser.add_argument("--self-test", action="store_true",
                        help="verify every installed model and run each panel's engine once on "
                        "tiny inputs; exit 0 when all pass, else 1 naming what failed")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    inpaint.add_parsers(sub)
    upscale.add_parser(sub)
    rerun.add_parser(sub)
    info.add_dataset_parser(sub)
    info.add_info_parser(sub)
    models.add_models_parser(sub)
    models.add_eval_parser(sub)
    train.add_parser(sub)
    latent.add_parser(sub)
    scene.add_parser(sub)
    style.add_parser(sub)
    judge.add_parser(sub)
    layers.add_parsers(sub)
    return parser


def open_gui(argv: list[str]) -> int:
    try:
        from desktop.app import main as gui_main
    except ImportError as exc:
        error(f"the desktop app cannot start ({exc}); the headless commands still work: "
              f"{PROG} --help")
        return 1
    return int(gui_main(argv) or 0)


def self_test(args: argparse.Namespace) -> int:
    """``easel --self-test``: core/selftest.py, one line per check; 1 when any failed."""
    if args.command is not None:
        raise CliError(f"--self-test runs on its own, not with the {args.command!r} command.")
    from core.device import pick_device
    from core.selftest import run_self_test

    checks = run_self_test(str(pick_device(args.device)),
                           report=lambda line: print(line, flush=True))
    return 0 if all(c.ok for c in checks) else 1


def _bad_input_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input (exit 2), imported late so --help stays fast."""
    types: list[type[BaseException]] = [CliError, OSError]
    for module, name in (("core.imageio", "ImageError"), ("core.jobs", "JobError"),
                         ("core.weights", "WeightsError"), ("core.device", "DeviceError"),
                         ("core.judges", "JudgeError"),
                         ("core.tensors", "ImageShapeError"),
                         ("core.document.stack", "DocumentError"),
                         ("core.data.folder", "FolderError"),
                         ("core.thirdparty.files", "ThirdPartyError")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            types.append(getattr(mod, name))
    return tuple(types)


def _is_cancel(exc: BaseException) -> bool:
    jobs = sys.modules.get("core.jobs")
    return isinstance(exc, KeyboardInterrupt) or (jobs is not None
                                                  and isinstance(exc, jobs.Cancelled))


def _is_out_of_memory(exc: BaseException) -> bool:
    """torch's out-of-memory error, from any job (only once torch is loaded: nothing else
    raises one)."""
    if "torch" not in sys.modules:
        return False
    from core.device import is_out_of_memory

    return is_out_of_memory(exc)


def _remove_stale_temps() -> None:
    """Clean what a killed write left in Easel's folders; never a reason to fail a command."""
    from core.paths import remove_stale_temps

    with contextlib.suppress(Exception):  # a cleanup must not stop the command asked for
        remove_stale_temps()


def _opens_a_file(argv: list[str], commands: set[str]) -> bool:
    """``easel picture.png`` opens the picture in the app, like ``easel-gui picture.png``."""
    return bool(argv) and argv[0] not in commands and not argv[0].startswith("-") \
        and Path(argv[0]).is_file()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    commands = {name for action in parser._actions if action.dest == "command"
                for name in (action.choices or ())}
    if _opens_a_file(argv, commands):
        return open_gui(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors (argparse prints them)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        if args.device is not None:
            from core.device import pick_device

            pick_device(args.device)  # an unknown or missing device is bad input, found early
        if args.self_test:
            return self_test(args)
        if args.command is None:
            return open_gui(argv)
        _remove_stale_temps()
        return args.func(args)
    except BaseException as exc:  # every failure becomes one line and an exit code
        if isinstance(exc, SystemExit):
            raise
        if os.environ.get("EASEL_DEBUG") == "1":
            traceback.print_exc()
        if _is_cancel(exc):
            error("cancelled.")
            return 130
        if isinstance(exc, FileExistsError) and exc.filename:
            # a file that appeared while the job ran: nothing was replaced
            error(f"{exc.filename} already exists; pass --overwrite to replace it.")
            return 2
        if isinstance(exc, _bad_input_types()):
            error(str(exc) or type(exc).__name__)
            return 2
        if _is_out_of_memory(exc):
            error(f"out of memory ({exc}). Run it on the CPU (--device cpu), on a smaller "
                  "picture, or with fewer samples.")
            return 2
        error(f"internal error: {type(exc).__name__}: {exc} "
              "(set EASEL_DEBUG=1 to see the traceback)")
        return 1
