"""Canvas tools: interaction objects that turn mouse input into document edits.

The view forwards mouse events to the active tool in image coordinates (one scene unit = one
image pixel). ``buttons`` is what Qt reports as held (for ``release``: the button released);
``modifiers`` the keyboard modifiers. A tool edits only through the Document's API, so every
edit lands on the undo stack, and draws feedback only through the scene's overlay helpers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPolygonF

from desktop.canvas.document import Document
from desktop.canvas.stroke import Stroke

if TYPE_CHECKING:
    from desktop.canvas.view import CanvasView

Buttons = Qt.MouseButton
Modifiers = Qt.KeyboardModifier
LEFT = Qt.MouseButton.LeftButton


class Tool:
    """Base: does nothing. Subclasses override what they need."""

    name = ""
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, view: CanvasView) -> None:
        self.view = view

    def document(self) -> Document | None:
        doc = self.view.document()
        return None if doc is None or doc.is_empty() else doc

    def activate(self) -> None:
        """The tool became the active one."""

    def deactivate(self) -> None:
        """Another tool was chosen (or the view is going away): drop any feedback."""

    def press(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        pass

    def move(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        pass

    def release(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        pass

    def hover(self, pos: QPointF | None) -> None:
        """The mouse moved with no button down; None: it left the view."""


class BrushTool(Tool):
    """Paint coverage into the mask; with ``erase``, take it out. One drag is one undo step.

    Shift+press continues with a straight line from where the previous stroke ended.
    """

    def __init__(self, view: CanvasView, erase: bool = False) -> None:
        super().__init__(view)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self._stroke: Stroke | None = None
        self._last_end: QPointF | None = None

    def press(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        doc = self.document()
        if doc is None or not buttons & LEFT:
            return
        self._stroke = doc.begin_stroke(self.view.brush_size, self.view.brush_hardness,
                                        self.erase)
        if modifiers & Qt.KeyboardModifier.ShiftModifier and self._last_end is not None:
            self._stroke.to(self._last_end)
        self._stroke.to(pos)

    def move(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        self.hover(pos)
        if self._stroke is not None:
            self._stroke.to(pos)

    def release(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        if self._stroke is not None:
            self._stroke.finish()
            self._stroke = None
            self._last_end = QPointF(pos)

    def hover(self, pos: QPointF | None) -> None:
        scene = self.view.canvas_scene()
        scene.set_brush_cursor(pos if self.document() is not None else None,
                               self.view.brush_size)

    def deactivate(self) -> None:
        if self._stroke is not None:
            self._stroke.finish()
            self._stroke = None
        self.view.canvas_scene().set_brush_cursor(None)


class _ShapeTool(Tool):
    """Shared by the rectangle and the lasso: drag out a polygon, then fill it into the mask
    (Alt/Option held at press or release: cut it out of the mask)."""

    closed_outline = True  # draw the outline in progress as a closed shape

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self._active = False
        self._subtract = False

    def press(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        if self.document() is None or not buttons & LEFT:
            return
        self._active = True
        self._subtract = bool(modifiers & Qt.KeyboardModifier.AltModifier)
        self.start(pos)

    def move(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        if self._active:
            self.extend(pos)
            self.view.canvas_scene().set_outline(self.polygon(), closed=self.closed_outline)

    def release(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        if not self._active:
            return
        self._active = False
        self.extend(pos)
        self.view.canvas_scene().set_outline(None)
        subtract = self._subtract or bool(modifiers & Qt.KeyboardModifier.AltModifier)
        doc = self.document()
        polygon = self.polygon()
        if doc is not None and polygon.size() >= 3:
            doc.fill_polygon(polygon, subtract=subtract)

    def deactivate(self) -> None:
        self._active = False
        self.view.canvas_scene().set_outline(None)

    def start(self, pos: QPointF) -> None:
        raise NotImplementedError

    def extend(self, pos: QPointF) -> None:
        raise NotImplementedError

    def polygon(self) -> QPolygonF:
        raise NotImplementedError


class RectTool(_ShapeTool):
    """An axis-aligned rectangle, snapped to whole pixels so its edges are crisp."""

    name = "rect"

    def start(self, pos: QPointF) -> None:
        self._a = self._b = QPointF(pos)

    def extend(self, pos: QPointF) -> None:
        self._b = QPointF(pos)

    def polygon(self) -> QPolygonF:
        x0, x1 = sorted((round(self._a.x()), round(self._b.x())))
        y0, y1 = sorted((round(self._a.y()), round(self._b.y())))
        if x0 == x1 or y0 == y1:
            return QPolygonF()
        return QPolygonF([QPointF(x0, y0), QPointF(x1, y0), QPointF(x1, y1), QPointF(x0, y1)])


class LassoTool(_ShapeTool):
    """A freehand outline, closed back to its start on release."""

    name = "lasso"
    closed_outline = False
    MIN_STEP_PX = 2.0  # screen pixels between recorded points: keeps the polygon small

    def start(self, pos: QPointF) -> None:
        self._points = [QPointF(pos)]

    def extend(self, pos: QPointF) -> None:
        last = self._points[-1]
        step = self.MIN_STEP_PX / max(self.view.zoom(), 1e-6)
        if math.hypot(pos.x() - last.x(), pos.y() - last.y()) >= step:
            self._points.append(QPointF(pos))

    def polygon(self) -> QPolygonF:
        return QPolygonF(self._points)


class MoveTool(Tool):
    """Pan: the image point grabbed at press stays under the mouse while dragging. The view
    also uses it for space+drag and the middle button, whatever tool is active."""

    name = "move"
    cursor = Qt.CursorShape.OpenHandCursor

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self._anchor: QPointF | None = None

    def press(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        self._anchor = QPointF(pos)
        self.view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        if self._anchor is not None:
            self.view.pan_scene(self._anchor - pos)

    def release(self, pos: QPointF, buttons: Buttons, modifiers: Modifiers) -> None:
        self._anchor = None
        self.view.restore_cursor()
