"""Rasterising brush segments and polygons into 8-bit mask coverage.

The mask is 8-bit coverage (0..255), not a strict 0/255 bitmap: a soft brush or an antialiased
lasso edge writes intermediate values. Consumers that need a binary mask threshold at 128
(``mask >= 128``). The coverage is kept so that feathered compositing stays possible.

A stroke segment is rasterised as a capsule (all pixels within ``radius`` of the segment), not as
a row of stamped dabs: the edge is exactly smooth whatever the mouse speed, and there is no dab
spacing to tune.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPolygonF

Coverage = tuple[QRect, np.ndarray]


def segment_coverage(p0: QPointF, p1: QPointF, size: float, hardness: float,
                     width: int, height: int) -> Coverage | None:
    """Coverage of a round brush of diameter ``size`` dragged from ``p0`` to ``p1``.

    Coordinates are image pixels, with pixel (x, y) centred on (x + 0.5, y + 0.5). ``hardness``
    1 gives a one-pixel antialiased edge at the brush outline; lower hardness moves the start of
    the falloff inwards (at 0 it starts at the centre). Coverage is 0.5 at the outline of a hard
    brush, so ``mask >= 128`` is exactly the disc of diameter ``size``. Returns the rect inside
    the ``width`` x ``height`` image and a uint8 array of that rect's size, or None when the
    segment misses the image.
    """
    radius = max(float(size), 1.0) / 2.0
    hardness = min(max(float(hardness), 0.0), 1.0)
    outer = radius + 0.5
    inner = max(0.0, min(radius * hardness, radius - 0.5))
    ax, ay, bx, by = p0.x(), p0.y(), p1.x(), p1.y()
    x0 = max(0, math.floor(min(ax, bx) - outer))
    y0 = max(0, math.floor(min(ay, by) - outer))
    x1 = min(width, math.ceil(max(ax, bx) + outer))
    y1 = min(height, math.ceil(max(ay, by) + outer))
    if x0 >= x1 or y0 >= y1:
        return None
    px = (np.arange(x0, x1, dtype=np.float32) + 0.5 - ax)[None, :]
    py = (np.arange(y0, y1, dtype=np.float32) + 0.5 - ay)[:, None]
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 > 1e-12:
        # Distance to the segment: project onto it, clamp to the end points.
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
        dist = np.hypot(px - t * dx, py - t * dy)
    else:
        dist = np.hypot(px, py)
    ramp = np.clip((outer - dist) / (outer - inner), 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible kink where the falloff starts
    cov = (ramp * 255.0 + 0.5).astype(np.uint8)
    return QRect(x0, y0, x1 - x0, y1 - y0), cov


def polygon_coverage(points: list[QPointF] | QPolygonF, width: int, height: int) -> Coverage | None:
    """Antialiased coverage of a closed polygon (non-zero winding, so a lasso that loops over
    itself fills everything it encloses), clipped to the image; None if it covers nothing."""
    poly = QPolygonF(points)
    if poly.size() < 3:
        return None
    rect = poly.boundingRect().toAlignedRect().adjusted(-1, -1, 1, 1) & QRect(0, 0, width, height)
    if rect.isEmpty():
        return None
    canvas = QImage(rect.width(), rect.height(), QImage.Format.Format_Alpha8)
    canvas.fill(0)
    painter = QPainter(canvas)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.translate(-rect.x(), -rect.y())
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 255, 255, 255))
    painter.drawPolygon(poly, Qt.FillRule.WindingFill)
    painter.end()
    bpl = canvas.bytesPerLine()
    rows = np.frombuffer(canvas.constBits(), np.uint8, count=bpl * rect.height())
    cov = rows.reshape(rect.height(), bpl)[:, : rect.width()].copy()
    if not cov.any():
        return None
    return rect, cov


def combine(current: np.ndarray, cov: np.ndarray, add: bool) -> np.ndarray:
    """Paint (add: max with the coverage) or erase (min with its complement).

    max/min are idempotent, so overlapping segments of one stroke never build up: a soft stroke
    has the same opacity wherever it crosses itself.
    """
    return np.maximum(current, cov) if add else np.minimum(current, 255 - cov)
