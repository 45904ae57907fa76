"""What every panel provides to the main window.

A panel builds job specs from its settings and the current document, and restores its
settings from a spec (for a dropped Easel PNG). It never runs models itself: the main window
submits the spec to the inference service.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.jobs import JobSpec
from desktop.canvas import Document


class Panel(QWidget):
    name = ""  # matches JobSpec.panel
    title = ""
    runRequested = Signal()  # the panel's main action was triggered

    def build_spec(self, doc: Document) -> JobSpec:
        """The job for the current settings; raises core.jobs.JobError with a readable text."""
        raise NotImplementedError

    def restore(self, spec: dict[str, Any]) -> list[str]:
        """Set the panel's controls from a spec dict (e.g. read from a PNG); returns what
        could not be restored as it was (one readable line each)."""
        return []

    def save_settings(self, settings: QSettings) -> None:
        """Persist the panel's controls."""

    def load_settings(self, settings: QSettings) -> None:
        """Restore the panel's controls from the last session."""

    def set_busy(self, busy: bool) -> None:
        """A job of this panel is running (or not)."""


class ComingPanel(Panel):
    """A placeholder for a panel whose feature has not landed yet."""

    def __init__(self, name: str, title: str, blurb: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name, self.title = name, title
        label = QLabel(f"<h3>{title}</h3><p>{blurb}</p><p><i>Coming in a later release.</i></p>")
        label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(label)
        lay.addStretch(1)
