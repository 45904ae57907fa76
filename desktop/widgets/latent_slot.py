"""One operand of latent arithmetic (slot A, B or C): the faces in it and what their mean looks
like. A slot holds one or more picks; as in the DCGAN paper, several faces showing a concept
average into a steadier operand than any one of them."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas import qimage_from_array
from desktop.panels.latent_model import Pick
from desktop.widgets.thumbnail_list import ThumbnailList, keys_from_mime, thumbnail_pixmap

PREVIEW = 64  # the faces models' own size


class LatentSlot(QFrame):
    """Shows a slot's members and their decoded mean; accepts drops of thumbnails and files."""

    selected = Signal()  # the slot's title was clicked: grid clicks now go here
    picksDropped = Signal(list)  # keys of thumbnails dropped on the slot
    filesDropped = Signal(list)  # local paths of files dropped on the slot
    canvasRequested = Signal()  # "use canvas selection" was pressed
    membersChanged = Signal()  # a member was removed or the slot cleared

    def __init__(self, name: str, tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._members: list[Pick] = []
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tip)

        self.title = QToolButton()
        self.title.setText(name)
        self.title.setCheckable(True)
        self.title.setAutoExclusive(True)
        self.title.setToolTip(f"Select slot {name}: clicking a sample puts it here")
        self.title.clicked.connect(self.selected)
        self.mean = QLabel()
        self.mean.setFixedSize(PREVIEW, PREVIEW)
        self.mean.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mean.setToolTip("The mean of this slot's faces, as the model draws it")
        self.source = QLabel()
        self.source.setFixedSize(PREVIEW, PREVIEW)
        self.source.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.source.setToolTip("The last image encoded into this slot; the frame is the square "
                               "the model saw")
        self.source.setVisible(False)
        self.source_box: tuple[int, int, int, int] | None = None  # shown on self.source
        self.members = ThumbnailList(icon=28, wrap=True, draggable=True)
        self.members.setFixedHeight(2 * 36 + 6)
        self.members.setToolTip("Faces averaged in this slot (Delete removes one)")
        self.members.deleteRequested.connect(self.remove)
        self.status = QLabel()
        self.status.setWordWrap(True)
        # Tool buttons (not push buttons, which are 80 px at least): two slots side by side
        # fit the panel's default width
        self.canvas_button = QToolButton()
        self.canvas_button.setText("Selection")
        self.canvas_button.setToolTip("Encode the canvas selection (or the whole picture) into "
                                      "this slot")
        self.canvas_button.clicked.connect(self.canvasRequested)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip(f"Empty slot {name}")
        self.clear_button.clicked.connect(self._clear_clicked)

        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        pics = QHBoxLayout()
        pics.addWidget(self.mean)
        pics.addWidget(self.source)
        buttons = QHBoxLayout()
        buttons.addWidget(self.canvas_button)
        buttons.addWidget(self.clear_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addLayout(pics)
        lay.addWidget(self.members)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.set_mean_image(None)

    # ---------------------------------------------------------------- members

    def picks(self) -> list[Pick]:
        return list(self._members)

    def latents(self) -> tuple[tuple[float, ...], ...]:
        return tuple(p.latent for p in self._members)

    def is_empty(self) -> bool:
        return not self._members

    def add(self, picks: list[Pick], limit: int) -> int:
        """Append picks (at most ``limit`` members in all); returns how many were added."""
        room = max(0, limit - len(self._members))
        for p in picks[:room]:
            self._members.append(p)
            self.members.add_thumbnail(p.image, p.key, p.label)
        return min(room, len(picks))

    def set_picks(self, picks: list[Pick]) -> None:
        self._members = []
        self.members.clear()
        self.add(picks, len(picks))

    def update_image(self, key: str, rgb: np.ndarray) -> None:
        """A member's image arrived (it was decoded after a restore)."""
        for row, p in enumerate(self._members):
            if p.key == key:
                p.image = rgb
                self.members.set_thumbnail(row, rgb)

    def remove(self, row: int) -> None:
        del self._members[row]
        self.members.takeItem(row)
        self.membersChanged.emit()

    def clear(self) -> None:
        self.set_picks([])
        self.set_mean_image(None)
        self.source.setVisible(False)
        self.source_box = None
        self.status.clear()

    def _clear_clicked(self) -> None:
        self.clear()
        self.membersChanged.emit()

    # ---------------------------------------------------------------- pictures

    def set_mean_image(self, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self.mean.setPixmap(QPixmap())
            self.mean.setText("empty" if self.is_empty() else "…")
        else:
            self.mean.setPixmap(thumbnail_pixmap(rgb, PREVIEW))

    def set_source(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Show the encoded image with the square the model saw framed on it."""
        h, w = rgb.shape[:2]
        pix = QPixmap.fromImage(qimage_from_array(rgb)).scaled(
            PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        sx, sy = pix.width() / w, pix.height() / h
        x0, y0, x1, y1 = box
        painter = QPainter(pix)
        painter.setPen(QPen(QColor(255, 200, 0), 2))
        w, h = max(1, round((x1 - x0) * sx) - 1), max(1, round((y1 - y0) * sy) - 1)
        painter.drawRect(QRect(round(x0 * sx), round(y0 * sy), w, h))
        painter.end()
        self.source.setPixmap(pix)
        self.source.setVisible(True)
        self.source_box = box

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    # ---------------------------------------------------------------- drops

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if keys_from_mime(mime) or any(u.isLocalFile() for u in mime.urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        keys = keys_from_mime(mime)
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if keys:
            event.acceptProposedAction()
            self.picksDropped.emit(keys)
        elif files:
            event.acceptProposedAction()
            self.filesDropped.emit(files)
