"""File reads and writes off the GUI thread: restoring a run's images, reading a folder's
thumbnails or writing a layered export must never freeze the window.

Decoding and hashing a big picture takes long enough to stall the GUI (a dropped PNG may name
several), and on a busy machine even a thumbnail decode can. :class:`BackgroundReader` runs such
reads one at a time on a pool thread and hands each result back on the GUI thread. It touches
no widget from its thread and runs no model work (that goes through the inference service).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThreadPool, Signal


class _Relay(QObject):
    """Lives in the GUI thread as long as the app: a read that ends after its reader was
    deleted (its widget closed) still has a live object to deliver to, which drops it."""

    delivered = Signal(object, int, object, object)  # reader, ticket, result, exception


_relay: _Relay | None = None


def _the_relay() -> _Relay:
    global _relay
    if _relay is None:
        _relay = _Relay(QCoreApplication.instance())
        _relay.delivered.connect(lambda reader, *rest: reader._deliver(*rest),
                                 Qt.ConnectionType.QueuedConnection)
    return _relay


class BackgroundReader(QObject):
    """``read(work, done)``: ``work()`` on a pool thread, then ``done(result)`` on the GUI
    thread, unless the reader was deleted or :meth:`forget` was called meanwhile. An exception
    ``work`` raises is raised again on the GUI thread (the crash handler shows it): ``work``
    turns the failures it expects into its result. Create it in the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay = _the_relay()
        self._pool = QThreadPool()  # not a child: it must outlive a deleted reader's reads
        self._pool.setMaxThreadCount(1)
        self._pending: dict[int, Callable[[Any], None]] = {}
        self._tickets = 0
        self.destroyed.connect(self._pending.clear)

    def read(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._tickets += 1
        ticket, relay = self._tickets, self._relay
        self._pending[ticket] = done

        def task() -> None:
            try:
                result, error = work(), None
            except Exception as exc:  # noqa: BLE001  (handed to the GUI thread)
                result, error = None, exc
            relay.delivered.emit(self, ticket, result, error)

        self._pool.start(task)

    def busy(self) -> bool:
        return bool(self._pending)

    def forget(self) -> None:
        """Drop the results of every read started so far (they are no longer wanted)."""
        self._pending.clear()

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
