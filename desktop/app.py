"""Easel's desktop entry point: logging, crash handlers, QApplication, MainWindow."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from desktop.crash import install_exception_hooks, setup_logging

log = logging.getLogger("easel.app")


def offer_recovery(window) -> bool:
    """If an earlier session crashed with unsaved work, offer to bring it back."""
    files = window.autosave.recoverable()
    if not files:
        return False
    newest, older = files[0], files[1:]
    answer = window.ask("Recover unsaved work?",
                        "Easel did not close properly last time. Recover the picture you were "
                        f"working on ({newest.name})?", ("Recover", "Discard"))
    recovered = False
    if answer == "Recover" and window.open_document(str(newest)):
        window.doc.path = None  # it is not saved anywhere yet: closing must ask first
        window.doc.mark_modified()
        window.autosave.save_now(force=True)
        window.setWindowTitle("Recovered* — Easel")
        recovered = True
    for file in [newest, *older]:
        window.autosave.discard(file)
    return recovered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="easel-gui", description="Easel image studio")
    parser.add_argument("file", nargs="?", help="an image or .easel document to open")
    parser.add_argument("--device", help="auto, cuda, mps or cpu (also $EASEL_DEVICE)")
    args, qt_args = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    if args.device:
        from core.device import DeviceError, pick_device

        try:
            pick_device(args.device)
        except DeviceError as exc:
            print(f"easel-gui: error: {exc}", file=sys.stderr)
            return 2

    log_path = setup_logging()
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Easel")
    app.setOrganizationName("Easel")
    app.setApplicationDisplayName("Easel")
    install_exception_hooks()
    log.info("Easel starting; log file %s", log_path)

    from desktop.window import MainWindow

    window = MainWindow()
    if args.device:
        window.set_device(args.device, remember=False)
    window.show()

    def after_show() -> None:
        if not offer_recovery(window) and args.file:
            window.open_paths([str(Path(args.file).resolve())])

    QTimer.singleShot(0, after_show)
    code = app.exec()
    log.info("Easel closed (exit code %s)", code)
    return code


if __name__ == "__main__":
    sys.exit(main())
