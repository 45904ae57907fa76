"""The Style panel's tray of style images: a thumbnail, a weight and a remove button for each.

Files (or an image) dropped on the tray are announced with ``filesDropped``/``imageDropped``;
the owner loads them (safe intake, its own messages) and adds what loaded with
:meth:`StyleTray.add`. The tray keeps the pixels (RGB, or RGBA when the file has alpha) and the
file they came from, so a spec can name the file and a restored spec can find it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas import array_from_qimage, dropped
from desktop.widgets.thumbnail_list import thumbnail_pixmap

THUMB = 48
MAX_WEIGHT = 10.0


@dataclass
class StyleImage:
    pixels: np.ndarray  # HxWx3 or HxWx4 uint8
    path: str | None  # the file it was read from (None: dropped pixels)
    sha256: str


class StyleRow(QFrame):
    """One style image: thumbnail, name, weight spin box and remove button."""

    removeClicked = Signal(object)  # this row

    def __init__(self, image: StyleImage, weight: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = image
        self.thumb = QLabel()
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setPixmap(thumbnail_pixmap(image.pixels, THUMB))
        h, w = image.pixels.shape[:2]
        name = Path(image.path).name if image.path else "Dropped image"
        self.name = QLabel(f"{name}\n{w}x{h}" + (", alpha" if image.pixels.shape[2] == 4 else ""))
        self.name.setToolTip(image.path or "An image dropped without a file: a result made "
                             "with it cannot find it again from its metadata.")
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, MAX_WEIGHT)
        self.weight.setSingleStep(0.1)
        self.weight.setDecimals(2)
        self.weight.setValue(weight)
        self.weight.setToolTip("How much of this style goes into the mix (relative to the "
                               "other style images; 0 leaves it out)")
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Take this style image out of the tray")
        self.remove_button.clicked.connect(lambda: self.removeClicked.emit(self))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.thumb)
        lay.addWidget(self.name, 1)
        lay.addWidget(QLabel("Weight"))
        lay.addWidget(self.weight)
        lay.addWidget(self.remove_button)


class StyleTray(QFrame):
    """Style images in rows; accepts dropped image files (and dropped image data)."""

    filesDropped = Signal(list)  # local file paths
    imageDropped = Signal(object)  # QImage (e.g. dragged from a browser)
    changed = Signal()  # an image was added or removed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.rows: list[StyleRow] = []
        self.placeholder = QLabel("Drop paintings here (up to several), or use "
                                  "“Add style image…”.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setMinimumHeight(THUMB)
        inner = QWidget()
        self.row_layout = QVBoxLayout(inner)
        self.row_layout.setContentsMargins(0, 0, 0, 0)
        self.row_layout.addWidget(self.placeholder)
        self.row_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        scroll.setMinimumHeight(THUMB + 16)
        scroll.setMaximumHeight(3 * (THUMB + 10) + 8)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(scroll)

    # ---------------------------------------------------------------- contents

    def count(self) -> int:
        return len(self.rows)

    def images(self) -> list[StyleImage]:
        return [row.image for row in self.rows]

    def weights(self) -> list[float]:
        return [round(row.weight.value(), 3) for row in self.rows]

    def has(self, sha256: str) -> bool:
        return any(row.image.sha256 == sha256 for row in self.rows)

    def add(self, image: StyleImage, weight: float = 1.0) -> StyleRow:
        row = StyleRow(image, weight)
        row.removeClicked.connect(lambda r: self.remove(self.rows.index(r)))
        self.rows.append(row)
        self.row_layout.insertWidget(self.row_layout.count() - 1, row)
        self.placeholder.setVisible(False)
        self.changed.emit()
        return row

    def remove(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            return
        row = self.rows.pop(index)
        self.row_layout.removeWidget(row)
        row.setParent(None)
        row.deleteLater()
        self.placeholder.setVisible(not self.rows)
        self.changed.emit()

    def clear(self) -> None:
        while self.rows:
            self.remove(len(self.rows) - 1)

    # ---------------------------------------------------------------- drops

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if any(u.isLocalFile() for u in mime.urls()) or mime.hasImage():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files, image = dropped(event.mimeData())
        if files or image is not None:
            event.acceptProposedAction()
        if files:
            self.filesDropped.emit(files)
        elif image is not None:
            self.imageDropped.emit(image)


def pixels_of_qimage(image: QImage) -> np.ndarray:
    """A dropped QImage as HxWx3 uint8, or HxWx4 when it is not fully opaque."""
    rgba = array_from_qimage(image.convertToFormat(QImage.Format.Format_RGBA8888))
    return np.ascontiguousarray(rgba[..., :3]) if bool((rgba[..., 3] == 255).all()) else rgba
