"""The Qt binding must not corrupt Python's reference counts.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a void Qt method;
after enough calls CPython aborts ("deallocating None"), taking the app down with unsaved work.
pyproject.toml excludes that release; this test catches any binding with the same fault.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication


def test_void_qt_calls_keep_none_alive(qapp: QApplication) -> None:
    probe = QObject()
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(200):
        probe.setObjectName("probe")
        timer.start(1000)
        timer.stop()
        qapp.processEvents()
    assert before - sys.getrefcount(None) < 50
