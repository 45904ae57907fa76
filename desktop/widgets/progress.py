"""The status-bar job indicator: progress bar, step message, ETA and a Cancel button."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min left"


class JobProgress(QWidget):
    """Shows the running job; hidden when nothing runs. Esc or the button cancels."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.eta = QLabel()
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Cancel the running job (Esc)")
        self.cancel.clicked.connect(self.cancelRequested)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.message, self.bar, self.eta, self.cancel):
            lay.addWidget(w)
        self._t0 = 0.0
        self.setVisible(False)

    def begin(self, title: str) -> None:
        self._t0 = time.monotonic()
        self.message.setText(title)
        self.bar.setRange(0, 0)  # busy until the first step arrives
        self.eta.clear()
        self.cancel.setEnabled(True)
        self.setVisible(True)

    def step(self, step: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(step, total))
            elapsed = time.monotonic() - self._t0
            if step > 0 and elapsed > 0.5:
                self.eta.setText(format_eta(elapsed * (total - step) / step))
        if message:
            self.message.setText(message)

    def cancelling(self) -> None:
        self.cancel.setEnabled(False)
        self.message.setText("Cancelling…")

    def end(self) -> None:
        self.setVisible(False)
