"""Python's cyclic garbage collection moved to the GUI thread while the inference core runs.

CPython collects cycles in whichever thread crosses an allocation threshold. With a job running,
that is usually the worker thread, and a cycle there may hold a GUI object (a closed window, a
panel's lambda): its C++ side would then be destroyed in the worker while the GUI thread is
dispatching events to it, and the app crashes far from the cause. So while an inference service
exists, automatic collection is off and the GUI thread collects instead, generation by
generation on a short timer, with the thresholds Python had.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimerEvent

CHECK_INTERVAL_MS = 200

_installed: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        # QObject.startTimer, not a QTimer: it lives as long as the application, by design.
        self.startTimer(CHECK_INTERVAL_MS)

    def timerEvent(self, event: QTimerEvent) -> None:  # Qt calls it by this name
        self.collect()

    def collect(self) -> int:
        """Collect the generations whose counts passed their thresholds; returns what was freed."""
        gc.disable()  # whatever re-enabled it, the worker must not collect
        counts = gc.get_count()
        freed = 0
        for generation in range(3):
            if counts[generation] <= self.threshold[generation]:
                break
            freed = gc.collect(generation)
        return freed


def install() -> GuiThreadCollector | None:
    """Called from the GUI thread when an inference service starts; idempotent.

    Without an application there is no GUI thread to protect, and nothing is installed.
    """
    global _installed
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() != app.thread():
        return _installed
    if _installed is None:
        _installed = GuiThreadCollector(app)
    return _installed
