"""Autosave of the open document to the user data folder, and recovery after a crash.

Each running app writes ``autosave-<id>.easel`` and holds ``autosave-<id>.lock`` (a QLockFile,
which knows when its owner died). A clean exit removes both. At the next start, an autosave
whose lock can be taken belonged to a session that crashed, so the app offers to recover it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QTimer

from core import paths
from core.document import encode
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
        # PNG-encoding a big picture takes a while: it runs off the GUI thread, one at a time.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="easel-autosave")
        self._write: Future | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def attach(self, doc: Document) -> None:
        """Watch ``doc``; it is written at the next tick after any edit."""
        if self._doc is not None:
            for signal in (self._doc.undo_stack.indexChanged, self._doc.resultsChanged):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect(self._edited)
        self._doc = doc
        doc.undo_stack.indexChanged.connect(self._edited)
        doc.resultsChanged.connect(self._edited)  # unapplied results are work too
        self.timer.start()

    def _edited(self, *_: object) -> None:
        self._pending = True

    def save_now(self, force: bool = False, wait: bool = True) -> bool:
        """Write the document if it changed since the last write (or if ``force``).

        The snapshot is taken here (cheap, copy-on-write); encoding and writing run on the
        autosave thread. ``wait=False`` (the timer) returns at once; True waits for the file.
        """
        doc = self._doc
        if doc is None or doc.is_empty() or not (self._pending or force):
            return False
        if self._write is not None and not self._write.done():
            return False  # the last write is still going; the next tick tries again
        self._pending = False
        self._write = self._writer.submit(self._write_file, doc.snapshot())
        return self._write.result() if wait else True

    def _tick(self) -> None:
        self.save_now(wait=False)

    def _write_file(self, contents: object) -> bool:
        try:
            atomic_write(self.file, encode(contents))
        except OSError as exc:
            log.warning("autosave failed: %s", exc)
            self._pending = True
            return False
        log.info("autosaved to %s", self.file)
        return True

    def finish(self) -> None:
        """A clean exit: stop, and remove this session's autosave and lock."""
        self.timer.stop()
        self._writer.shutdown(wait=True)
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
