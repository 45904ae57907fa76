"""A list of small image thumbnails, each standing for something the owner keeps by key.

Used for the latent panel's sample grid, slot members, walk frames and direction sets. Items
can be dragged within the app: the drag carries the items' keys (``KEYS_MIME``), never the
pixels, so the widget that receives the drop asks its owner what a key stands for.
"""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from desktop.canvas import qimage_from_array

KEYS_MIME = "application/x-easel-thumbnail-keys"
KEY_ROLE = Qt.ItemDataRole.UserRole


def keys_from_mime(mime: QMimeData) -> list[str]:
    """The keys a drag from a ThumbnailList carries ([] for any other drag)."""
    if not mime.hasFormat(KEYS_MIME):
        return []
    try:
        keys = json.loads(bytes(mime.data(KEYS_MIME)).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return []
    return [str(k) for k in keys] if isinstance(keys, list) else []


def thumbnail_pixmap(rgb: np.ndarray | None, size: int) -> QPixmap:
    """``rgb`` scaled to fit ``size`` px, or a grey square while the image is not known yet."""
    if rgb is None:
        pix = QPixmap(size, size)
        pix.fill(QColor(90, 90, 90))
        return pix
    step = max(1, max(rgb.shape[:2]) // (4 * size))  # a big picture: scale a strided copy
    rgb = np.ascontiguousarray(rgb[::step, ::step])
    # Small model outputs (16-64 px) stay crisp when enlarged without smoothing.
    mode = (Qt.TransformationMode.FastTransformation if rgb.shape[0] < size
            else Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(qimage_from_array(rgb)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, mode)


class ThumbnailList(QListWidget):
    """Thumbnails in rows (``wrap``) or one row. Click, right-click and Delete are signalled
    with the row; the owner decides what they mean."""

    picked = Signal(int)  # left click on a row
    menuRequested = Signal(int, QPoint)  # right click: row, global position
    deleteRequested = Signal(int)  # Delete or Backspace on the current row

    def __init__(self, icon: int = 56, wrap: bool = True, draggable: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon = icon
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(icon, icon))
        self.setGridSize(QSize(icon + 8, icon + 8))
        self.setWrapping(wrap)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setUniformItemSizes(True)
        if draggable:
            self.setDragEnabled(True)
            self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemClicked.connect(lambda item: self.picked.emit(self.row(item)))
        if not wrap:
            self.setFixedHeight(icon + 28)

    def add_thumbnail(self, rgb: np.ndarray | None, key: str, tip: str = "") -> None:
        item = QListWidgetItem(QIcon(thumbnail_pixmap(rgb, self.icon)), "")
        item.setData(KEY_ROLE, key)
        item.setToolTip(tip)
        self.addItem(item)

    def set_thumbnail(self, row: int, rgb: np.ndarray) -> None:
        self.item(row).setIcon(QIcon(thumbnail_pixmap(rgb, self.icon)))

    def key(self, row: int) -> str:
        return str(self.item(row).data(KEY_ROLE))

    def keys(self) -> list[str]:
        return [self.key(i) for i in range(self.count())]

    def mimeTypes(self) -> list[str]:
        return [KEYS_MIME]

    def mimeData(self, items: list[QListWidgetItem]) -> QMimeData:
        mime = QMimeData()
        mime.setData(KEYS_MIME, json.dumps([str(i.data(KEY_ROLE)) for i in items]).encode())
        return mime

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.currentRow() >= 0:
            self.deleteRequested.emit(self.currentRow())
            return
        super().keyPressEvent(event)

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is not None:
            self.menuRequested.emit(self.row(item), self.viewport().mapToGlobal(pos))
