"""Autosave of the open document to the user data folder, and recovery after a crash.

Each running app writes ``autosave-<id>.easel`` and holds ``autosave-<id>.lock`` (a QLockFile,
which knows when its owner died). A clean exit removes both. At the next start, an autosave
whose lock can be taken belonged to a session that crashed, so the app offers to recover it.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QTimer

from core import paths
from core.imageio import atomic_write
from desktop.canvas import Document

log = logging.getLogger("easel.autosave")


class Autosave(QObject):
    def __init__(self, folder: Path | None = None, interval_ms: int = 60_000) -> None:
        super().__init__()
        self.folder = Path(folder) if folder else paths.autosave_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.file = self.folder / f"autosave-{self._id}.easel"
        self._lock = QLockFile(str(self.folder / f"autosave-{self._id}.lock"))
        self._lock.setStaleLockTime(0)
        self._lock.tryLock(0)
        self._doc: Document | None = None
        self._pending = False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)

    def attach(self, doc: Document) -> None:
        """Watch ``doc``; it is written at the next tick after any edit."""
        if self._doc is not None:
            try:
                self._doc.undo_stack.indexChanged.disconnect(self._edited)
            except (RuntimeError, TypeError):
                pass
        self._doc = doc
        doc.undo_stack.indexChanged.connect(self._edited)
        self.timer.start()

    def _edited(self, *_: object) -> None:
        self._pending = True

    def save_now(self, force: bool = False) -> bool:
        """Write the document if it changed since the last write (or if ``force``)."""
        doc = self._doc
        if doc is None or doc.is_empty() or not (self._pending or force):
            return False
        try:
            atomic_write(self.file, doc.snapshot_bytes())
        except OSError as exc:
            log.warning("autosave failed: %s", exc)
            return False
        self._pending = False
        log.info("autosaved to %s", self.file)
        return True

    def finish(self) -> None:
        """A clean exit: stop, and remove this session's autosave and lock."""
        self.timer.stop()
        self.file.unlink(missing_ok=True)
        self._lock.unlock()

    def recoverable(self) -> list[Path]:
        """Autosaves left behind by sessions that ended without a clean exit, newest first."""
        found = []
        for file in self.folder.glob("autosave-*.easel"):
            if file == self.file:
                continue
            lock = QLockFile(str(file.with_suffix(".lock")))
            if lock.tryLock(0):  # its owner is gone
                lock.unlock()
                found.append(file)
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    @staticmethod
    def discard(file: Path) -> None:
        file.unlink(missing_ok=True)
        file.with_suffix(".lock").unlink(missing_ok=True)
