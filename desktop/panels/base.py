"""What every panel provides to the main window.

A panel builds job specs from its settings and the current document, and restores its
settings from a spec (for a dropped Easel PNG). It never runs models itself: the main window
submits the spec to the inference service.

Besides its main job (whose images go to the result strip), a panel may need jobs of its own
(a grid of samples, a live preview): it emits ``jobRequested(spec)``, the window submits it to
the same service and hands the outcome back to ``job_finished``/``job_failed``/
``job_cancelled``/``job_progress`` with that same spec object, so the panel knows which of its
requests answered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QPushButton, QSpinBox, QWidget

from core.jobs import JobSpec, Result
from desktop.canvas import Document


class Panel(QWidget):
    name = ""  # matches JobSpec.panel
    title = ""
    runRequested = Signal()  # the panel's main action was triggered
    jobRequested = Signal(object)  # a JobSpec the panel wants run for itself
    cancelRequested = Signal(object)  # a JobSpec it asked for, or None: all of its jobs
    resultToCanvas = Signal(object, object, str)  # HxWx3 uint8, spec dict, label
    # A new version of the whole picture (an edit of it, its size): HxWx3 uint8, spec, label.
    pictureEdited = Signal(object, object, str)

    doc: Document | None = None  # the window's document (set_document keeps it current)

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
        """A job of this panel is running (or not)."""

    def job_finished(self, spec: JobSpec, result: Result) -> None:
        """A job from ``jobRequested`` finished."""

    def job_failed(self, spec: JobSpec, message: str) -> None:
        """A job from ``jobRequested`` failed; ``message`` is written for the user."""

    def job_cancelled(self, spec: JobSpec) -> None:
        """A job from ``jobRequested`` was cancelled (by the user or the panel)."""

    def job_progress(self, spec: JobSpec, step: int, total: int, message: str,
                     preview: np.ndarray | None) -> None:
        """A job from ``jobRequested`` made progress (``preview``: an image, or None)."""


def refresh_button(refresh: Any) -> QPushButton:
    """The small button beside a model picker that lists the installed models again."""
    button = QPushButton("↻")
    button.setFixedWidth(28)
    button.setToolTip("List the installed models again (e.g. after training one)")
    button.clicked.connect(refresh)
    return button


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


def double_spin(lo: float, hi: float, value: float, step: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(2)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def restore_spins(spec: dict[str, Any], spins: dict[str, QSpinBox],
                  label: Callable[[str], str] | None = None) -> list[str]:
    """Set each spin box from the spec's whole number of the same key; one line for each
    value that is not a whole number inside the box's range (the box keeps its value).
    ``label`` names a key in those lines (default: the key in words)."""
    label = label or (lambda key: key.replace("_", " ").capitalize())
    problems = []
    for key, box in spins.items():
        value = spec.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) \
                or not box.minimum() <= value <= box.maximum():
            problems.append(f"{label(key)} {value!r} is outside {box.minimum()}.."
                            f"{box.maximum()}; kept {box.value()}.")
            continue
        box.setValue(value)
    return problems


def setting_number(value: Any) -> float | None:
    """A number read back from QSettings (which may hand back a string), or None when it is
    not a finite number, so a panel keeps its default."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
