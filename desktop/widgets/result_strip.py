"""The result strip: thumbnails of a document's results, to compare and apply them."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QWidget

from desktop.canvas import Document, qimage_from_array

THUMB = 96


class ResultStrip(QListWidget):
    """One row of thumbnails. Click compares a result on the canvas; double-click applies it."""

    compareRequested = Signal(int)  # -1: show the document itself again
    applyRequested = Signal(int)
    saveRequested = Signal(int)
    removeRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setFixedHeight(THUMB + 44)
        self.setMovement(QListWidget.Movement.Static)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentRowChanged.connect(self.compareRequested)
        self.itemDoubleClicked.connect(lambda item: self.applyRequested.emit(self.row(item)))
        self._doc: Document | None = None

    def set_document(self, doc: Document) -> None:
        if self._doc is not None:
            self._doc.resultsChanged.disconnect(self.refresh)
        self._doc = doc
        doc.resultsChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.blockSignals(True)
        self.clear()
        if self._doc is not None:
            for entry in self._doc.results:
                pix = QPixmap.fromImage(qimage_from_array(entry.rgb)).scaled(
                    THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation)
                item = QListWidgetItem(QIcon(pix), entry.label)
                item.setToolTip(f"{entry.label}\nClick to compare, double-click to apply")
                self.addItem(item)
        self.setCurrentRow(-1)
        self.blockSignals(False)
        self.compareRequested.emit(-1)

    def select_last(self) -> None:
        if self.count():
            self.setCurrentRow(self.count() - 1)

    def _menu(self, pos) -> None:
        row = self.row(self.itemAt(pos)) if self.itemAt(pos) else -1
        if row < 0:
            return
        menu = QMenu(self)
        for text, signal in (("Apply to canvas", self.applyRequested),
                             ("Save as PNG…", self.saveRequested),
                             ("Remove", self.removeRequested)):
            act = QAction(text, menu)
            act.triggered.connect(lambda _=False, s=signal: s.emit(row))
            menu.addAction(act)
        menu.exec(self.viewport().mapToGlobal(pos))
