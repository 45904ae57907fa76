"""Logging and crash reporting for the desktop app.

Logs go to a rotating file in the user log folder. Uncaught exceptions in any thread are
logged and shown in a dialog (the app never silently exits); a hard crash (segfault, abort) is
written there by faulthandler.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from typing import IO

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from core import paths

log = logging.getLogger("easel")

_fault_file: IO[str] | None = None


def log_file() -> Path:
    return paths.log_dir() / "easel.log"


def setup_logging(level: int = logging.INFO) -> Path:
    """Send the `easel` loggers to a rotating file (1 MB x 5) and to stderr."""
    global _fault_file
    path = log_file()
    root = logging.getLogger("easel")
    for h in [h for h in root.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]:
        if Path(h.baseFilename) != path.resolve():  # the user folders moved (EASEL_HOME)
            root.removeHandler(h)
            h.close()
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=5, encoding="utf-8")
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
        root.addHandler(handler)
        stderr = logging.StreamHandler()
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    root.setLevel(level)
    if _fault_file is None:
        _fault_file = open(paths.log_dir() / "faults.log", "a", encoding="utf-8")  # noqa: SIM115
        faulthandler.enable(file=_fault_file, all_threads=True)
    return path


class _Reporter(QObject):
    """Carries crash reports from any thread to a dialog on the GUI thread."""

    report = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.report.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self.show_dialogs = True

    def _show(self, summary: str, details: str) -> None:
        if not self.show_dialogs:
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "Easel hit an unexpected error",
                          f"{summary}\n\nYour work is kept; the details are in the log:\n"
                          f"{log_file()}")
        box.setDetailedText(details)
        box.exec()


_reporter: _Reporter | None = None


def install_exception_hooks(show_dialogs: bool = True) -> None:
    """Route uncaught exceptions (main thread and other threads) to the log and a dialog."""
    global _reporter
    if _reporter is None:
        _reporter = _Reporter()
        app = QApplication.instance()
        if app is not None:
            _reporter.moveToThread(app.thread())
    _reporter.show_dialogs = show_dialogs

    def report(exc_type: type, exc: BaseException, tb: object, where: str) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))  # type: ignore[arg-type]
        log.error("Uncaught exception in %s:\n%s", where, details)
        if _reporter is not None:
            _reporter.report.emit(f"{exc_type.__name__}: {exc}", details)

    def excepthook(exc_type: type, exc: BaseException, tb: object) -> None:
        report(exc_type, exc, tb, "the main thread")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "a thread"
        report(args.exc_type, args.exc_value, args.exc_traceback, name)  # type: ignore[arg-type]

    sys.excepthook = excepthook
    threading.excepthook = thread_hook
