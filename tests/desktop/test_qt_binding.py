"""The Qt binding must not corrupt Python's reference counts.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a void Qt method;
after enough calls CPython aborts ("deallocating None"), taking the app down with unsaved work.
pyproject.toml excludes that release; this test catches any binding with the same fault.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication


def test_void_qt_calls_keep_none_alive(qapp: QApplication) -> None:
    # Objects earlier tests left for deferred deletion or the collector also hold references
    # to None; free them first, so only the calls below can move the count.
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()
    gc.collect()
    probe = QObject()
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(1000):  # 3000 void calls: the faulty binding drops 3000 references
        probe.setObjectName("probe")
        timer.start(1000)
        timer.stop()
        qapp.processEvents()
    assert before - sys.getrefcount(None) < 300
