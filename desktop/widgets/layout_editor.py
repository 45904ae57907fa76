"""A scene's layout as labelled boxes over its picture, for the artist to rearrange.

The Scene panel shows the chosen candidate here with the layout it was drawn from (a layout
prior's: background, and each object's shape, colour and box). The artist drags a box to move
it, drags a corner to resize it, draws a new box on free ground (it takes the label chosen in
the panel), selects one to relabel it, and deletes it with Delete or Backspace; Ctrl+Z undoes
the last change. The layout is kept in the JSON form of core/data/layouts.py (boxes as fractions
of the picture); an object's size word follows its box. Qt only: nothing here draws pictures.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.data.layouts import MAX_OBJECTS, size_of
from core.data.scenes import COLOURS

HANDLE = 7  # px: the grab area of a corner
MIN_SIDE = 1 / 32  # the smallest box side (one bin of the layout tokens)
UNDO_DEPTH = 50
Box = list[float]


def label(obj: dict[str, Any]) -> str:
    """How a box is labelled: "small red star"."""
    return f"{obj['size']} {obj['colour']} {obj['shape']}"


class LayoutEditor(QWidget):
    """Labelled boxes over a picture; emits ``changed`` after every edit of the layout,
    ``selectionChanged(index)`` (-1: none) and ``refused(message)`` for an edit it cannot
    make (a fourth object)."""

    changed = Signal()
    selectionChanged = Signal(int)
    refused = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image: QImage | None = None
        self.background = ""
        self.objects: list[dict[str, Any]] = []
        self.selected = -1
        self.new_label = {"shape": "circle", "colour": "red"}  # what a drawn box becomes
        self._undo: list[tuple[str, list[dict[str, Any]]]] = []
        self._drag: tuple[str, int, QPointF, Box] | None = None  # mode, box, start, box then
        self._drawing: Box | None = None
        self.setToolTip("The layout of the picture: drag a box to move it, drag a corner to "
                        "resize it, drag on free ground to draw a new one (it takes the shape "
                        "and colour chosen below), Delete removes the selected box, Ctrl+Z "
                        "undoes")

    def sizeHint(self) -> QSize:
        return QSize(256, 256)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    # ------------------------------------------------------------- content

    def set_picture(self, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self._image = None
        else:
            rgb = np.ascontiguousarray(rgb[..., :3])
            h, w = rgb.shape[:2]
            self._image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def set_layout(self, layout: dict[str, Any] | None) -> None:
        """Show ``layout`` (the JSON form; None: no layout), forgetting the undo history."""
        layout = layout or {}
        self.background = str(layout.get("background", ""))
        self.objects = [dict(o, box=[float(v) for v in o["box"]])
                        for o in layout.get("objects", [])]
        self._undo.clear()
        self._drag = self._drawing = None
        self._select(-1)
        self.update()

    def layout(self) -> dict[str, Any]:  # type: ignore[override]  (QWidget.layout is unused)
        """The layout as shown, in the JSON form (core.data.layouts.layout_from_dict)."""
        return {"background": self.background,
                "objects": [{**o, "box": [round(v, 4) for v in o["box"]]} for o in self.objects]}

    def has_layout(self) -> bool:
        return bool(self.background)

    # ------------------------------------------------------------- edits

    def _remember(self) -> None:
        self._undo.append((self.background, copy.deepcopy(self.objects)))
        del self._undo[:-UNDO_DEPTH]

    def _edited(self) -> None:
        self.update()
        self.changed.emit()

    def undo(self) -> bool:
        if not self._undo:
            return False
        self.background, self.objects = self._undo.pop()
        self._select(min(self.selected, len(self.objects) - 1))
        self._edited()
        return True

    def set_background(self, colour: str) -> None:
        if colour != self.background:
            self._remember()
            self.background = colour
            self._edited()

    def relabel(self, **words: str) -> None:
        """Change the selected box's shape and/or colour (else the label of the next box)."""
        if not 0 <= self.selected < len(self.objects):
            self.new_label.update(words)
            return
        obj = self.objects[self.selected]
        if all(obj.get(k) == v for k, v in words.items()):
            return
        self._remember()
        obj.update(words)
        self._edited()

    def delete_selected(self) -> bool:
        if not 0 <= self.selected < len(self.objects):
            return False
        self._remember()
        del self.objects[self.selected]
        self._select(-1)
        self._edited()
        return True

    def add_box(self, box: Box) -> bool:
        """A new object in ``box`` with the chosen label; refused past MAX_OBJECTS."""
        if len(self.objects) >= MAX_OBJECTS:
            self.refused.emit(f"A scene holds at most {MAX_OBJECTS} objects: delete one first "
                              "(select it, Delete).")
            return False
        self._remember()
        self.objects.append({**self.new_label, "size": size_of(box), "box": box})
        self._select(len(self.objects) - 1)
        self._edited()
        return True

    def _select(self, index: int) -> None:
        if index != self.selected:
            self.selected = index
            self.update()
            self.selectionChanged.emit(index)

    # ------------------------------------------------------------- geometry

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn: the largest centred square."""
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_widget(self, box: Box) -> QRectF:
        r = self.picture_rect()
        return QRectF(r.x() + box[0] * r.width(), r.y() + box[1] * r.height(),
                      (box[2] - box[0]) * r.width(), (box[3] - box[1]) * r.height())

    def to_picture(self, p: QPointF) -> tuple[float, float]:
        """A widget point as fractions of the picture, clamped to it."""
        r = self.picture_rect()
        return (min(1.0, max(0.0, (p.x() - r.x()) / r.width())),
                min(1.0, max(0.0, (p.y() - r.y()) / r.height())))

    def _hit(self, p: QPointF) -> tuple[str, int]:
        """What a press at ``p`` grabs: ("corner0".."corner3", i), ("move", i) or ("", -1);
        the selected box first, then the topmost."""
        order = list(range(len(self.objects)))[::-1]
        if 0 <= self.selected < len(self.objects):
            order.remove(self.selected)
            order.insert(0, self.selected)
        for i in order:
            rect = self.to_widget(self.objects[i]["box"])
            corners = (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight())
            for k, c in enumerate(corners):
                if abs(p.x() - c.x()) <= HANDLE and abs(p.y() - c.y()) <= HANDLE:
                    return f"corner{k}", i
        for i in order:
            if self.to_widget(self.objects[i]["box"]).contains(p):
                return "move", i
        return "", -1

    # ------------------------------------------------------------- mouse and keys

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.has_layout():
            return
        p = event.position()
        mode, i = self._hit(p)
        self._select(i)
        if i >= 0:
            self._drag = (mode, i, p, list(self.objects[i]["box"]))
            self._remember()
        else:
            x, y = self.to_picture(p)
            self._drawing = [x, y, x, y]
        self.setFocus()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        p = event.position()
        if self._drag is not None:
            mode, i, start, box = self._drag
            self.objects[i]["box"] = self._dragged(mode, box, start, p)
            self.objects[i]["size"] = size_of(self.objects[i]["box"])
            self.update()
        elif self._drawing is not None:
            x, y = self.to_picture(p)
            self._drawing[2:] = [x, y]
            self.update()
        else:
            mode, _ = self._hit(p)
            self.setCursor(Qt.CursorShape.SizeAllCursor if mode == "move" else
                           Qt.CursorShape.SizeFDiagCursor if mode in ("corner0", "corner3") else
                           Qt.CursorShape.SizeBDiagCursor if mode else
                           Qt.CursorShape.CrossCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None:
            _, i, _, before = self._drag
            self._drag = None
            if self.objects[i]["box"] == before:
                self._undo.pop()  # a click that moved nothing is no edit
            else:
                self._edited()
        elif self._drawing is not None:
            x0, y0, x1, y1 = self._drawing
            self._drawing = None
            box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
            if box[2] - box[0] >= MIN_SIDE and box[3] - box[1] >= MIN_SIDE:
                self.add_box(box)
            self.update()

    def _dragged(self, mode: str, box: Box, start: QPointF, p: QPointF) -> Box:
        """``box`` after dragging from ``start`` to ``p``: moved whole, kept in the picture,
        or one corner moved, keeping at least MIN_SIDE."""
        r = self.picture_rect()
        dx, dy = (p.x() - start.x()) / r.width(), (p.y() - start.y()) / r.height()
        x0, y0, x1, y1 = box
        if mode == "move":
            dx = min(max(dx, -x0), 1 - x1)
            dy = min(max(dy, -y0), 1 - y1)
            return [x0 + dx, y0 + dy, x1 + dx, y1 + dy]
        k = int(mode[-1])
        if k in (0, 2):
            x0 = min(max(0.0, x0 + dx), x1 - MIN_SIDE)
        else:
            x1 = max(min(1.0, x1 + dx), x0 + MIN_SIDE)
        if k in (0, 1):
            y0 = min(max(0.0, y0 + dy), y1 - MIN_SIDE)
        else:
            y1 = max(min(1.0, y1 + dy), y0 + MIN_SIDE)
        return [x0, y0, x1, y1]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.delete_selected():
            return
        if event.matches(QKeySequence.StandardKey.Undo) and self.undo():
            return
        if event.key() == Qt.Key.Key_Escape and self.selected >= 0:
            self._select(-1)
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------- drawing

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        r = self.picture_rect()
        if self._image is not None:
            painter.drawImage(r, self._image)
        else:
            painter.fillRect(r, QColor(*COLOURS.get(self.background, (60, 60, 60))))
        if not self.has_layout():
            painter.setPen(self.palette().text().color())
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "No layout: a layout model's candidates show theirs here")
            return
        metrics = QFontMetrics(painter.font())
        for i, obj in enumerate(self.objects):
            self._paint_box(painter, metrics, self.to_widget(obj["box"]), label(obj),
                            i == self.selected)
        if self._drawing is not None:
            x0, y0, x1, y1 = self._drawing
            box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
            self._paint_box(painter, metrics, self.to_widget(box),
                            f"{self.new_label['colour']} {self.new_label['shape']}", True)

    def _paint_box(self, painter: QPainter, metrics: QFontMetrics, rect: QRectF, text: str,
                   selected: bool) -> None:
        # Drawn twice (dark, then light) so the outline shows on any colour.
        for colour, width in ((QColor(0, 0, 0, 200), 3), (QColor(255, 255, 255), 1)):
            pen = QPen(colour, width)
            if not selected:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect)
        tag = QRectF(rect.x(), rect.y() - metrics.height() - 2,
                     metrics.horizontalAdvance(text) + 6, metrics.height() + 2)
        if tag.y() < 0:
            tag.moveTop(rect.y())
        tag.moveLeft(max(0.0, min(tag.x(), self.width() - tag.width())))  # kept in view
        painter.fillRect(tag, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
        if selected:
            for c in (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight()):
                painter.fillRect(QRectF(c.x() - 3, c.y() - 3, 6, 6), QColor(255, 255, 255))
