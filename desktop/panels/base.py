"""What every panel provides to the main window.

A panel builds job specs from its settings and the current document, and restores its
settings from a spec (for a dropped Easel PNG). It never runs models itself: the main window
submits the spec to the inference service.

Besides its main job (whose images go to the result strip), a panel may need jobs of its own
(a grid of samples, a live preview): ``run_job(spec)`` submits one to the window's inference
service and returns its :class:`~desktop.inference.JobHandle`, whose signals the panel
connects to (the window also shows its progress and cancels it on Esc).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QSpinBox, QWidget

from core.jobs import JobSpec
from desktop.canvas import Document
from desktop.inference import JobHandle


class Panel(QWidget):
    name = ""  # matches JobSpec.panel
    title = ""
    runRequested = Signal()  # the panel's main action was triggered
    resultToCanvas = Signal(object, object, str)  # HxWx3 uint8, spec dict, label
    # A new version of the whole picture (an edit of it, its size): HxWx3 uint8, spec, label.
    pictureEdited = Signal(object, object, str)

    doc: Document | None = None  # the window's document (set_document keeps it current)
    _job_runner: Callable[[JobSpec], JobHandle | None] | None = None

    def set_job_runner(self, runner: Callable[[JobSpec], JobHandle | None]) -> None:
        """How the panel's own jobs are submitted (the window's service)."""
        self._job_runner = runner

    def run_job(self, spec: JobSpec) -> JobHandle | None:
        """Submit a job of the panel's own and return its handle to connect to; None when no
        job can run (no window yet, or it is closing)."""
        return self._job_runner(spec) if self._job_runner is not None else None

    def set_document(self, doc: Document) -> None:
        """The document the window now shows (panels may read its picture and mask)."""
        self.doc = doc

    def build_spec(self, doc: Document) -> JobSpec:
        """The job for the current settings; raises core.jobs.JobError with a readable text."""
        raise NotImplementedError

    def run_in_panel(self) -> bool:
        """Run the panel's main action (Ctrl+Return) as jobs of its own, whose results the
        panel shows itself; False (the default): the window submits ``build_spec`` instead
        and puts the results in the strip."""
        return False

    def restore(self, spec: dict[str, Any]) -> list[str]:
        """Set the panel's controls from a spec dict (e.g. read from a PNG); returns what
        could not be restored as it was (one readable line each)."""
        return []

    def save_settings(self, settings: QSettings) -> None:
        """Persist the panel's controls."""

    def load_settings(self, settings: QSettings) -> None:
        """Restore the panel's controls from the last session."""

    def shutdown(self) -> None:
        """The app is closing: stop what the panel runs itself (reads, processes)."""

    def set_busy(self, busy: bool) -> None:
        """The window's main job for this panel is running (or not)."""

    def watch_main_job(self, job: JobHandle) -> None:
        """The window's main job built from this panel was submitted: connect to ``job`` to
        follow it in the panel (by default the window alone shows it)."""


def refresh_button(refresh: Any) -> QPushButton:
    """The small button beside a model picker that lists the installed models again."""
    button = QPushButton("↻")
    button.setFixedWidth(28)
    button.setToolTip("List the installed models again (e.g. after training one)")
    button.clicked.connect(refresh)
    return button


def shrinkable(box: QComboBox, chars: int = 8) -> QComboBox:
    """Let a combo box be narrower than its longest entry (about ``chars`` characters; the
    list still opens at full width), so a narrow dock does not scroll sideways."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(chars)
    return box


def message_label() -> QLabel:
    """A panel's message line: wrapped, selectable (to copy an error), hidden until used."""
    label = QLabel()
    label.setWordWrap(True)
    label.setVisible(False)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def spin(lo: int, hi: int, value: int, tip: str, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    box.setSuffix(suffix)
    return box


def setting_number(value: Any) -> float | None:
    """A number read back from QSettings (which may hand back a string), or None when it is
    not a finite number, so a panel keeps its default."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
