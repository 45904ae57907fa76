"""File reads off the GUI thread: restoring a run's images must never freeze the window.

Decoding and hashing a big picture takes long enough to stall the GUI (a dropped PNG may name
several). :class:`BackgroundReader` runs such reads one at a time on a pool thread and hands the
result back on the GUI thread. It touches no widget from its thread and runs no model work
(that goes through the inference service).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal


class BackgroundReader(QObject):
    """``read(work, done)``: ``work()`` on a pool thread, then ``done(result)`` on the GUI
    thread. An exception ``work`` raises is raised again on the GUI thread (the crash handler
    shows it): ``work`` turns the failures it expects into its result."""

    _finished = Signal(int, object, object)  # ticket, result, exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pending: dict[int, Callable[[Any], None]] = {}
        self._tickets = 0
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def read(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._tickets += 1
        ticket = self._tickets
        self._pending[ticket] = done

        def task() -> None:
            try:
                result, error = work(), None
            except Exception as exc:  # noqa: BLE001  (handed to the GUI thread)
                result, error = None, exc
            self._finished.emit(ticket, result, error)

        self._pool.start(task)

    def busy(self) -> bool:
        return bool(self._pending)

    def wait(self, msecs: int = -1) -> bool:
        """Block until every read has run (at shutdown; results not yet delivered are
        dropped). True when none is left."""
        done = self._pool.waitForDone(msecs)
        self._pending.clear()
        return done

    def _deliver(self, ticket: int, result: Any, error: BaseException | None) -> None:
        done = self._pending.pop(ticket, None)
        if done is None:
            return
        if error is not None:
            raise error
        done(result)
