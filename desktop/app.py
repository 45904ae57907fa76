"""Easel's desktop entry point: logging, crash handlers, QApplication, MainWindow."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
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
                        "Easel did not close properly last time. Recover "
                        f"{autosaved_picture(newest)}?", ("Recover", "Discard"))
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


def autosaved_picture(file: Path) -> str:
    """What an autosave holds, in words: "photo.png, autosaved today at 14:02"."""
    from core.document import DocumentError, peek

    try:
        meta = peek(file.read_bytes(), file.name)
        source = meta.get("source_path")
        what = (Path(source).name if isinstance(source, str) and source else
                f"an untitled picture ({meta.get('width')}x{meta.get('height')})")
        when = datetime.fromtimestamp(file.stat().st_mtime)
    except (OSError, DocumentError):
        return "the picture you were working on"
    days = (datetime.now().date() - when.date()).days
    day = {0: "today", 1: "yesterday"}.get(days, f"on {when:%d %B %Y}")
    return f"{what}, autosaved {day} at {when:%H:%M}"


def _probe_shown(window, tries: int = 500) -> None:
    """``EASEL_STARTUP_PROBE=1`` (bench/startup.py): once the shown window is exposed and the
    event loop has had a turn to paint it, say so on stdout and close (a cold-start timer)."""
    handle = window.windowHandle()
    if tries > 0 and not (handle is not None and handle.isExposed()):
        QTimer.singleShot(10, lambda: _probe_shown(window, tries - 1))
        return

    def shown() -> None:
        print("easel: window shown", flush=True)
        window.close()

    QTimer.singleShot(0, shown)  # the expose queued a paint; let the loop do it first


def app_icon():
    """The window icon: resources/icons beside the packages (a source checkout) or at the
    root of a PyInstaller bundle; None when neither has it (e.g. a wheel install)."""
    from PySide6.QtGui import QIcon

    root = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    path = root / "resources" / "icons" / "easel-256.png"
    return QIcon(str(path)) if path.is_file() else None


def _remove_stale_temps() -> None:
    """Clean what a killed write left in Easel's folders (logged; never stops the start)."""
    from core.paths import remove_stale_temps

    try:
        for path in remove_stale_temps():
            log.info("removed a leftover temporary file %s", path)
    except Exception:
        log.warning("could not clean leftover temporary files", exc_info=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="easel-gui", description="Easel image studio")
    parser.add_argument("file", nargs="?", help="an image or .easel document to open")
    parser.add_argument("--device", help="auto, cuda, mps or cpu (also $EASEL_DEVICE)")
    args, qt_args = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    if args.device:
        from core.device import DeviceError, device_name, pick_device

        try:
            # Only an accelerator asked for by name needs torch to check it is here; the window
            # otherwise shows before torch loads (in the inference worker, at the first job).
            if device_name(args.device).split(":")[0] in ("cuda", "mps"):
                pick_device(args.device)
        except DeviceError as exc:
            print(f"easel-gui: error: {exc}", file=sys.stderr)
            return 2

    log_path = setup_logging()
    _remove_stale_temps()
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Easel")
    icon = app_icon()
    if icon is not None:
        app.setWindowIcon(icon)
    app.setOrganizationName("Easel")
    app.setApplicationDisplayName("Easel")
    install_exception_hooks()
    log.info("Easel starting; log file %s", log_path)

    from desktop.window import MainWindow

    window = MainWindow()
    if args.device:
        window.set_device(args.device, remember=False)
    window.show()
    # However the loop ends (last window closed, a quit from the desktop session), the running
    # job is cancelled, a layered export is finished, and their threads waited for before Python
    # tears the objects down.
    app.aboutToQuit.connect(window.service.shutdown)
    app.aboutToQuit.connect(window.finish_exports)  # a started export is never left unwritten

    def after_show() -> None:
        if not offer_recovery(window) and args.file:
            window.open_paths([str(Path(args.file).resolve())])

    QTimer.singleShot(0, after_show)
    if os.environ.get("EASEL_STARTUP_PROBE") == "1":
        QTimer.singleShot(0, lambda: _probe_shown(window))
    code = app.exec()
    log.info("Easel closed (exit code %s)", code)
    return code


if __name__ == "__main__":
    sys.exit(main())
