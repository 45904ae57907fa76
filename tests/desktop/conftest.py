"""Fixtures for desktop tests: a running inference service, and a guard against Qt leftovers.

A QThread still running or a QTimer still active after a test outlives the objects it works
on; in a later test it fires into freed memory and crashes far from the cause (napari guards
its suite the same way). ``qt_leaks`` is autouse: it records every QThread and QTimer started
from Python during the test and fails the test if any is still going at its end.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import suppress

import pytest
from PySide6.QtCore import QThread, QTimer

from desktop.inference import InferenceService

# A thread told to quit() a moment before the test ended is finishing, not leaked.
THREAD_GRACE_MS = 200
# Threads that would not stop even after the test: kept referenced so that their Python wrapper
# is never collected, since destroying a running QThread aborts the whole process.
_UNSTOPPABLE: list[QThread] = []


def _caller() -> str:
    """Where the object was started, and from which line of which test."""
    frames = [f for f in traceback.extract_stack()[:-2] if f.filename != __file__]
    if not frames:
        return "an unknown place"
    where = [frames[-1]]
    test_frames = [f for f in frames if os.path.basename(f.filename).startswith("test_")]
    if test_frames and test_frames[-1] is not frames[-1]:
        where.append(test_frames[-1])
    return " <- ".join(f"{f.filename}:{f.lineno} ({f.name})" for f in where)


class QtLeakTracker:
    """Records QThreads and QTimers started while installed; reports those still going."""

    def __init__(self) -> None:
        # Strong references on purpose (see _UNSTOPPABLE); dropped in cleanup().
        self.threads: list[tuple[QThread, str]] = []
        self.timers: list[tuple[QTimer, str]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        thread_start = QThread.start
        timer_start = QTimer.start
        tracker = self

        def start_thread(thread: QThread, *args: object, **kw: object) -> None:
            tracker.threads.append((thread, _caller()))
            thread_start(thread, *args, **kw)

        def start_timer(timer: QTimer, *args: object, **kw: object) -> None:
            tracker.timers.append((timer, _caller()))
            timer_start(timer, *args, **kw)

        monkeypatch.setattr(QThread, "start", start_thread)
        monkeypatch.setattr(QTimer, "start", start_timer)

    def leaks(self) -> list[str]:
        found = []
        for thread, where in self.threads:
            # RuntimeError: the C++ object is already deleted, so it cannot be running.
            with suppress(RuntimeError):
                if thread.isRunning() and not thread.wait(THREAD_GRACE_MS):
                    found.append(f"QThread {thread.objectName()!r} still running, started at "
                                 f"{where}")
        for timer, where in self.timers:
            with suppress(RuntimeError):
                if timer.isActive():
                    found.append(f"QTimer still active, started at {where}")
        return found

    def cleanup(self) -> None:
        """Stop whatever is still going so the next test starts clean."""
        for timer, _ in self.timers:
            with suppress(RuntimeError):
                timer.stop()
        for thread, _ in self.threads:
            with suppress(RuntimeError):
                if thread.isRunning():
                    thread.quit()
                    if not thread.wait(2000):
                        _UNSTOPPABLE.append(thread)
        self.threads.clear()
        self.timers.clear()


@pytest.fixture(autouse=True)
def qt_leaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[QtLeakTracker]:
    """Fail the test if it leaves a QThread running or a QTimer active."""
    tracker = QtLeakTracker()
    tracker.install(monkeypatch)
    yield tracker
    found = tracker.leaks()
    tracker.cleanup()
    if found:
        pytest.fail("The test left Qt work running (stop timers, shut services down):\n  "
                    + "\n  ".join(found), pytrace=False)


@pytest.fixture
def service(qtbot, tmp_path, monkeypatch) -> Iterator[InferenceService]:
    """A running InferenceService on the CPU, shut down after the test."""
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    svc = InferenceService(device="cpu")
    yield svc
    assert svc.shutdown(5000), "the inference thread did not stop"

