"""The canvas view: zoom, pan, and forwarding mouse input to the active tool.

The view never edits pixels. It maps viewport positions to image coordinates and hands them to
the active tool (tools.py), which edits the Document through its undoable API.

Drag and drop: the view does not open anything itself. When local files are dropped on it, it
emits ``filesDropped(list[str])`` (their paths, in the order given) and the main window decides
what they are (images, .easel documents, .ora and .psd layers, Easel PNGs). Drags that carry no
local file are refused.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QMimeData, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QWidget

from desktop.canvas.document import Document
from desktop.canvas.scene import CanvasScene
from desktop.canvas.tools import BrushTool, LassoTool, MoveTool, RectTool, Tool

MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
ZOOM_STEP = 1.25  # zoom_in / zoom_out; a wheel notch (120 units) is 2 ** (1/3), about 1.26
MIN_BRUSH, MAX_BRUSH = 1, 1000
BRUSH_STEP = 1.2  # one [ or ] step scales the brush by this, and by at least one pixel


class CanvasView(QGraphicsView):
    """Shows a CanvasScene. Tools: "brush", "eraser", "rect", "lasso", "move".

    Wheel: zoom around the cursor. Space+drag or the middle button: pan. [ and ]: brush size.
    """

    zoomChanged = Signal(float)
    brushChanged = Signal(int, float)
    toolChanged = Signal(str)
    filesDropped = Signal(list)  # list[str]: local paths dropped on the canvas

    TOOLS = ("brush", "eraser", "rect", "lasso", "move")

    def __init__(self, scene: CanvasScene | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = scene if scene is not None else CanvasScene(self)
        self.setScene(self._scene)
        # Whoever sets the scene's document (the view or the window directly), a new picture
        # size refits the view.
        self._scene.imageSizeChanged.connect(self.fit)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(56, 56, 60))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setAcceptDrops(True)  # see the module docstring
        self._brush_size = 32
        self._brush_hardness = 1.0
        self._tools: dict[str, Tool] = {
            "brush": BrushTool(self), "eraser": BrushTool(self, erase=True),
            "rect": RectTool(self), "lasso": LassoTool(self), "move": MoveTool(self)}
        self._tool_name = "brush"
        self._pan_tool = MoveTool(self)
        self._grab: Tool | None = None  # the tool receiving the current drag
        self._grab_button = Qt.MouseButton.NoButton
        self._space = False
        self._fit_mode = True  # follow the window size until the user zooms
        self._last_pos: QPointF | None = None
        self.restore_cursor()

    # ---- document ------------------------------------------------------------------------

    def canvas_scene(self) -> CanvasScene:
        return self._scene

    def document(self) -> Document | None:
        return self._scene.document()

    EMPTY_HINT = ("Drop an image here\nor use File > Open (Ctrl+O) or paste one (Ctrl+V)\n\n"
                  "PNG, JPEG, WebP, BMP, TIFF or GIF")

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """An empty canvas says how to start."""
        super().drawForeground(painter, rect)
        doc = self.document()
        if doc is not None and not doc.is_empty():
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(200, 200, 210))
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.EMPTY_HINT)
        painter.restore()

    def set_document(self, doc: Document | None) -> None:
        """Show ``doc`` (same as ``canvas_scene().set_document(doc)``); fits it in the view."""
        self._end_drag()
        self._scene.set_document(doc)

    # ---- zoom and pan --------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``factor`` keeping the image point under ``anchor`` (viewport coordinates;
        default: the viewport's centre) where it is."""
        factor = min(max(factor, MIN_ZOOM), MAX_ZOOM)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        before = self.map_to_image(anchor)
        old = self.zoom()
        self.setTransform(QTransform.fromScale(factor, factor))
        self.pan_scene(before - self.map_to_image(anchor))
        self._fit_mode = False
        if not math.isclose(old, factor):
            self.zoomChanged.emit(factor)

    def fit(self) -> None:
        """Show the whole picture, centred; keeps fitting as the view resizes until the user
        zooms."""
        rect = self._scene.image_rect()
        old = self.zoom()
        if rect.isEmpty():
            self.setTransform(QTransform())
        else:
            vp = self.viewport().rect()
            factor = min((vp.width() - 4) / rect.width(), (vp.height() - 4) / rect.height())
            factor = min(max(factor, MIN_ZOOM), MAX_ZOOM)
            self.setTransform(QTransform.fromScale(factor, factor))
            self.centerOn(rect.center())
        self._fit_mode = True
        if not math.isclose(old, self.zoom()):
            self.zoomChanged.emit(self.zoom())

    def zoom_100(self) -> None:
        self.set_zoom(1.0)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def pan_scene(self, delta: QPointF) -> None:
        """Scroll so that the view moves by ``delta`` image pixels."""
        z = self.zoom()
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(delta.x() * z))
        v.setValue(v.value() + round(delta.y() * z))

    def map_to_image(self, viewport_pos: QPointF) -> QPointF:
        """Viewport position -> image coordinates, with sub-pixel precision (mapToScene
        rounds to whole viewport pixels first)."""
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(viewport_pos))

    # ---- tools and brush -----------------------------------------------------------------

    def tool(self) -> str:
        return self._tool_name

    def set_tool(self, name: str) -> None:
        if name not in self._tools:
            raise ValueError(f"Unknown tool {name!r}; expected one of {', '.join(self.TOOLS)}")
        if name == self._tool_name:
            return
        self._end_drag()
        self._tools[self._tool_name].deactivate()
        self._tool_name = name
        self._tools[name].activate()
        self.restore_cursor()
        if self._last_pos is not None:
            self._tools[name].hover(self._last_pos)
        self.toolChanged.emit(name)

    @property
    def brush_size(self) -> int:
        """Brush diameter in image pixels."""
        return self._brush_size

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        self.set_brush_size(size)

    @property
    def brush_hardness(self) -> float:
        """0 (soft falloff from the centre) .. 1 (hard edge)."""
        return self._brush_hardness

    @brush_hardness.setter
    def brush_hardness(self, hardness: float) -> None:
        self.set_brush_hardness(hardness)

    def set_brush_size(self, size: int) -> None:
        size = min(max(int(size), MIN_BRUSH), MAX_BRUSH)
        if size != self._brush_size:
            self._brush_size = size
            self._brush_feedback()

    def set_brush_hardness(self, hardness: float) -> None:
        hardness = float(min(max(hardness, 0.0), 1.0))
        if hardness != self._brush_hardness:
            self._brush_hardness = hardness
            self._brush_feedback()

    def change_brush_size(self, steps: int) -> None:
        """Grow (steps > 0) or shrink the brush by ``steps`` steps of BRUSH_STEP each, at least
        one pixel per step (what [ and ] do)."""
        size = self._brush_size
        for _ in range(abs(steps)):
            scaled = size * BRUSH_STEP if steps > 0 else size / BRUSH_STEP
            size = max(round(scaled), size + 1) if steps > 0 else min(round(scaled), size - 1)
        self.set_brush_size(size)

    def restore_cursor(self) -> None:
        """The cursor of the active tool (or the open hand while space is held)."""
        shape = Qt.CursorShape.OpenHandCursor if self._space else self._active().cursor
        self.viewport().setCursor(shape)

    # ---- events --------------------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:
        dy = event.angleDelta().y() or event.angleDelta().x()
        if dy:
            self.set_zoom(self.zoom() * 2.0 ** (dy / 360.0), event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._grab is not None:  # a second button during a drag: ignore it
            event.accept()
            return
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and self._space):
            self._grab = self._pan_tool
        elif button == Qt.MouseButton.LeftButton:
            self._grab = self._active()
        else:
            super().mousePressEvent(event)
            return
        self._grab_button = button
        self._grab.press(self.map_to_image(event.position()), event.buttons(), event.modifiers())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = self.map_to_image(event.position())
        self._last_pos = pos
        if self._grab is not None:
            self._grab.move(pos, event.buttons(), event.modifiers())
        else:
            self._active().hover(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._grab is None or event.button() != self._grab_button:
            event.accept()
            return
        pos = self.map_to_image(event.position())
        grab, self._grab = self._grab, None
        grab.release(pos, event.button(), event.modifiers())
        self._active().hover(pos)
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self._last_pos = None
        if self._grab is None:
            self._active().hover(None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self.restore_cursor()
        elif key == Qt.Key.Key_BracketLeft:
            self.change_brush_size(-1)
        elif key == Qt.Key.Key_BracketRight:
            self.change_brush_size(1)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.restore_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A key release is never delivered after focus leaves: forget space, finish any drag.
        self._space = False
        self._end_drag()
        self.restore_cursor()
        super().focusOutEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        files = _local_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.filesDropped.emit(files)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # ---- internals -----------------------------------------------------------------------

    def _active(self) -> Tool:
        return self._tools[self._tool_name]

    def _end_drag(self) -> None:
        if self._grab is not None:
            grab, self._grab = self._grab, None
            pos = self._last_pos if self._last_pos is not None else QPointF()
            grab.release(pos, self._grab_button, Qt.KeyboardModifier.NoModifier)

    def _brush_feedback(self) -> None:
        self.brushChanged.emit(self._brush_size, self._brush_hardness)
        if self._last_pos is not None and self._grab is None:
            self._active().hover(self._last_pos)


def _local_files(mime: QMimeData | None) -> list[str]:
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
