"""The scene that shows a Document: checkerboard, its layers, mask tint, tool overlays.

The scene only observes the document. Each document layer is a pixmap item at the layer's
offset, with its visibility and opacity, stacked in the document's order; a change of the stack
re-lays the items, reusing the pixmaps of layers whose pixels did not change. The picture's and
the mask's pixmaps are kept in step rect by rect: a brush dab re-tints only the dab's rect of
the mask overlay, so painting stays instant on big pictures. A null rect (open, undo of a
resize) rebuilds a layer whole. Scene coordinates are image pixel coordinates: the picture sits
at (0, 0) at scale 1.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QStyleOptionGraphicsItem,
    QWidget,
)

from desktop.canvas.document import Document
from desktop.canvas.qimage import pixel_view, qimage_from_array

MASK_TINT = (255, 48, 48)
MASK_OPACITY = 0.5
SOURCE_TINT = (40, 200, 110)  # the source area (where a fill may copy from): green, not red
SOURCE_OPACITY = 0.3
CHECKER_PX = 8  # checkerboard square, in screen pixels at any zoom


def _tint_table() -> np.ndarray:
    """Mask coverage -> premultiplied RGBA of the red overlay (a lookup, no per-pixel maths)."""
    alpha = np.arange(256, dtype=np.float32) * MASK_OPACITY
    rgb = np.array(MASK_TINT, np.float32)[None, :] * alpha[:, None] / 255.0
    return np.concatenate([rgb, alpha[:, None]], axis=1).round().astype(np.uint8)


TINT = _tint_table()


class _PixmapLayer(QGraphicsItem):
    """A pixmap at the origin that can be updated rect by rect."""

    def __init__(self) -> None:
        super().__init__()
        self.pixmap = QPixmap()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def boundingRect(self) -> QRectF:
        return QRectF(self.pixmap.rect())

    def set_image(self, image: QImage | None) -> None:
        self.prepareGeometryChange()
        self.pixmap = QPixmap() if image is None or image.isNull() else QPixmap.fromImage(image)
        self.update()

    def update_region(self, part: QImage, rect: QRect) -> None:
        painter = QPainter(self.pixmap)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(rect.topLeft(), part)
        painter.end()
        self.update(QRectF(rect))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self.pixmap.isNull():
            return
        # Zoomed in, show crisp pixels (the artist is looking at them); zoomed out, smooth.
        zoom = painter.worldTransform().m11()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1.0)
        r = option.exposedRect.toAlignedRect() & self.pixmap.rect()
        if not r.isEmpty():
            painter.drawPixmap(QRectF(r), self.pixmap, QRectF(r))


class _Checkerboard(QGraphicsItem):
    """Grey squares under transparent pixels; constant size on screen whatever the zoom."""

    def __init__(self) -> None:
        super().__init__()
        self.rect = QRectF()
        tile = QPixmap(2 * CHECKER_PX, 2 * CHECKER_PX)
        tile.fill(QColor(204, 204, 204))
        p = QPainter(tile)
        p.fillRect(0, 0, CHECKER_PX, CHECKER_PX, QColor(153, 153, 153))
        p.fillRect(CHECKER_PX, CHECKER_PX, CHECKER_PX, CHECKER_PX, QColor(153, 153, 153))
        p.end()
        self._tile = tile

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self.rect = rect

    def boundingRect(self) -> QRectF:
        return self.rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        brush = QBrush(self._tile)
        zoom = painter.worldTransform().m11() or 1.0
        brush.setTransform(QTransform.fromScale(1.0 / zoom, 1.0 / zoom))
        painter.fillRect(self.rect, brush)


def _two_tone(item_cls: type, z: float) -> tuple[QGraphicsItem, QGraphicsItem]:
    """A dark solid and a light dashed outline: visible on any picture. Cosmetic pens (width 0)
    stay one screen pixel wide at every zoom."""
    dark, light = item_cls(), item_cls()
    dark.setPen(QPen(QColor(0, 0, 0, 200), 0))
    pen = QPen(QColor(255, 255, 255, 230), 0)
    pen.setDashPattern([4, 4])
    light.setPen(pen)
    for item in (dark, light):
        item.setZValue(z)
        item.setVisible(False)
        item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
    return dark, light


class CanvasScene(QGraphicsScene):
    """Shows one Document; switch with ``set_document``.

    ``imageSizeChanged`` follows the document's picture geometry (a new document, a picture
    opened, an edit that resized it): views refit on it.
    """

    imageSizeChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc: Document | None = None
        self._checker = _Checkerboard()
        self._layers: list[_PixmapLayer] = []  # the document's layers, bottom first
        self._picture: _PixmapLayer | None = None
        self._compare = _PixmapLayer()
        self._mask = _PixmapLayer()
        self._source = _PixmapLayer()
        self._source_area: np.ndarray | None = None
        # The layers sit between the checkerboard (0) and the compared result (2); the source
        # area's tint lies under the mask's.
        for z, item in ((0, self._checker), (2, self._compare), (2.5, self._source),
                        (3, self._mask)):
            item.setZValue(z)
            self.addItem(item)
        self._compare.setVisible(False)
        self._cursor = _two_tone(QGraphicsEllipseItem, 10)
        self._outline = _two_tone(QGraphicsPathItem, 11)
        for item in (*self._cursor, *self._outline):
            self.addItem(item)

    # ---- document ------------------------------------------------------------------------

    def document(self) -> Document | None:
        return self._doc

    def set_document(self, doc: Document | None) -> None:
        if self._doc is not None:
            self._doc.imageRegionChanged.disconnect(self._on_image_region)
            self._doc.maskRegionChanged.disconnect(self._on_mask_region)
            self._doc.sizeChanged.disconnect(self._on_size)
            self._doc.layersChanged.disconnect(self._on_layers)
        self._doc = doc
        if doc is not None:
            doc.imageRegionChanged.connect(self._on_image_region)
            doc.maskRegionChanged.connect(self._on_mask_region)
            doc.sizeChanged.connect(self._on_size)
            doc.layersChanged.connect(self._on_layers)
        self.set_compare_image(None)
        self._on_size()

    def image_rect(self) -> QRectF:
        """The picture's rect in scene coordinates (empty when there is none)."""
        if self._doc is None or self._doc.is_empty():
            return QRectF()
        return QRectF(0, 0, self._doc.size().width(), self._doc.size().height())

    # ---- display options -----------------------------------------------------------------

    def set_mask_visible(self, visible: bool) -> None:
        self._mask.setVisible(visible)

    def mask_visible(self) -> bool:
        return self._mask.isVisible()

    def set_compare_image(self, rgb: np.ndarray | None) -> None:
        """Show other pixels (e.g. a result) over the picture, stretched to its rect; None
        shows the picture again. Display only: the document is not changed."""
        rect = self.image_rect()
        if rgb is None or rect.isEmpty():
            self._compare.setVisible(False)
            self._compare.set_image(None)
            return
        self._compare.set_image(qimage_from_array(rgb))
        h, w = rgb.shape[:2]
        self._compare.setTransform(QTransform.fromScale(rect.width() / w, rect.height() / h))
        self._compare.setVisible(True)

    def set_source_area(self, area: np.ndarray | None) -> None:
        """Tint the source area (HxW bool: where a fill may copy from) green; None, or an
        area of another size than the picture (a new one was opened), shows nothing."""
        self._source_area = area
        rect = self.image_rect()
        if area is None or area.shape != (round(rect.height()), round(rect.width())):
            self._source.set_image(None)
            self._source.setVisible(False)
            return
        alpha = round(255 * SOURCE_OPACITY)
        rgba = np.zeros((*area.shape, 4), np.uint8)
        rgba[area] = (*(round(c * alpha / 255) for c in SOURCE_TINT), alpha)  # premultiplied
        part = QImage(rgba.data, area.shape[1], area.shape[0], area.shape[1] * 4,
                      QImage.Format.Format_RGBA8888_Premultiplied)
        self._source.set_image(part)  # QPixmap.fromImage copies, while rgba is still alive
        self._source.setVisible(True)

    def source_area_shown(self) -> bool:
        return self._source.isVisible() and not self._source.pixmap.isNull()

    def set_brush_cursor(self, center: QPointF | None, diameter: float = 0.0) -> None:
        """The brush outline at ``center`` (image coordinates); None hides it."""
        for item in self._cursor:
            if center is None:
                item.setVisible(False)
                continue
            r = diameter / 2.0
            item.setRect(QRectF(center.x() - r, center.y() - r, diameter, diameter))
            item.setVisible(True)

    def set_outline(self, polygon: QPolygonF | None, closed: bool = True) -> None:
        """A selection outline in progress (rectangle or lasso); None hides it."""
        path = QPainterPath()
        if polygon is not None and polygon.size() > 0:
            path.addPolygon(polygon)
            if closed:
                path.closeSubpath()
        for item in self._outline:
            item.setPath(path)
            item.setVisible(polygon is not None)

    # ---- keeping in step with the document ----------------------------------------------

    def _on_size(self) -> None:
        rect = self.image_rect()
        self._checker.set_rect(rect)
        self._on_layers()
        self._on_mask_region(QRect())
        self.set_source_area(self._source_area)
        # Room around the picture, so its edges can be panned to the middle of the view.
        pad = max(rect.width(), rect.height()) * 0.5 + 64
        self.setSceneRect(rect.adjusted(-pad, -pad, pad, pad) if not rect.isEmpty()
                          else QRectF(0, 0, 1, 1))
        self.imageSizeChanged.emit()

    def _on_layers(self) -> None:
        """Lay out one item per document layer, reusing the pixmaps of unchanged pixels."""
        doc = self._doc
        layers = [] if doc is None or doc.is_empty() else doc.layers
        old = {item.data(0): item for item in self._layers}
        self._layers, self._picture = [], None
        for i, layer in enumerate(layers):
            key = layer.image.cacheKey()
            item = old.pop(key, None)
            if item is None:
                item = _PixmapLayer()
                item.setData(0, key)
                item.set_image(layer.image)
                self.addItem(item)
            item.setPos(layer.x, layer.y)
            item.setVisible(layer.visible)
            item.setOpacity(layer.opacity)
            item.setZValue(1 + i / (len(layers) + 1))
            self._layers.append(item)
            if layer.kind == "picture":
                self._picture = item
        for item in old.values():
            self.removeItem(item)

    def layer_items(self) -> list[QGraphicsItem]:
        """The items showing the document's layers, bottom first."""
        return list(self._layers)

    def _on_image_region(self, rect: QRect) -> None:
        doc = self._doc
        if doc is None or doc.is_empty() or self._picture is None or rect.isNull() \
                or self._picture.pixmap.size() != doc.image.size():
            self._on_layers()
            return
        self._picture.update_region(doc.image.copy(rect), rect)
        # Written in place, the picture's pixels now have a new cache key: follow it.
        self._picture.setData(0, doc.image.cacheKey())

    def _on_mask_region(self, rect: QRect) -> None:
        doc = self._doc
        if doc is None or doc.is_empty():
            self._mask.set_image(None)
            return
        whole = rect.isNull() or self._mask.pixmap.size() != doc.mask.size()
        if whole:
            rect = doc.mask.rect()
        coverage = pixel_view(doc.mask, readonly=True)[
            rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
        tint = np.ascontiguousarray(TINT[coverage])
        part = QImage(tint.data, rect.width(), rect.height(), rect.width() * 4,
                      QImage.Format.Format_RGBA8888_Premultiplied)
        if whole:
            self._mask.set_image(part)  # QPixmap.fromImage copies, while tint is still alive
        else:
            self._mask.update_region(part, rect)
