"""A brush or eraser stroke on a Document's mask: painted live, undone as one step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRect

from desktop.canvas.brush import combine, segment_coverage
from desktop.canvas.commands import Patch
from desktop.canvas.qimage import pixel_view, read_region, write_region

if TYPE_CHECKING:
    from desktop.canvas.document import Document


class Stroke:
    """One press-drag-release of the brush or eraser: painted live, undone as one step.

    Each ``to(point)`` paints the segment from the previous point into the mask at once (and
    announces its rect). Before a tile of the mask is first touched, its pixels are saved, so
    ``finish`` can build the undo patch for the stroke's bounding rect without ever copying the
    whole mask: the cost follows the stroke, not the picture.
    """

    TILE = 128

    def __init__(self, doc: Document, size: float, hardness: float, erase: bool) -> None:
        self.doc, self.size, self.hardness, self.erase = doc, size, hardness, erase
        self.last: QPointF | None = None
        self._tiles: dict[tuple[int, int], np.ndarray] = {}
        self._bounds = QRect()
        self._cancelled = False

    def to(self, point: QPointF) -> None:
        if self._cancelled:
            return
        start = self.last if self.last is not None else point
        self.last = QPointF(point)
        mask = self.doc.mask
        cov = segment_coverage(start, point, self.size, self.hardness, mask.width(), mask.height())
        if cov is None:
            return
        rect, coverage = cov
        self._save_tiles(rect)
        view = pixel_view(mask)
        region = view[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
        region[...] = combine(region, coverage, add=not self.erase)
        self._bounds = self._bounds.united(rect)
        self.doc._announce("mask", rect)

    def finish(self, text: str | None = None) -> bool:
        """End the stroke: push its undo step. False when it changed nothing."""
        if self.doc._stroke is self:
            self.doc._stroke = None
        if self._bounds.isEmpty():
            return False
        rect, self._bounds = self._bounds, QRect()
        after = read_region(self.doc.mask, rect)
        before = after.copy()
        for (tx, ty), tile in self._tiles.items():
            t = QRect(tx * self.TILE, ty * self.TILE, tile.shape[1], tile.shape[0]) & rect
            before[t.top() - rect.top() : t.bottom() + 1 - rect.top(),
                   t.left() - rect.left() : t.right() + 1 - rect.left()] = tile[
                t.top() - ty * self.TILE : t.bottom() + 1 - ty * self.TILE,
                t.left() - tx * self.TILE : t.right() + 1 - tx * self.TILE]
        self._tiles.clear()
        patch = Patch.between("mask", before, after, (rect.x(), rect.y()))
        if text is None:
            text = "Erase" if self.erase else "Brush stroke"
        return self.doc._push([patch], text, applied=True)

    def cancel(self) -> None:
        """Drop the stroke: put back the pixels it painted; later ``to`` calls do nothing."""
        if self.doc._stroke is self:
            self.doc._stroke = None
        self._cancelled = True
        for (tx, ty), tile in self._tiles.items():
            rect = QRect(tx * self.TILE, ty * self.TILE, tile.shape[1], tile.shape[0])
            write_region(self.doc.mask, rect, tile)
            self.doc._announce("mask", rect)
        self._tiles.clear()
        self._bounds = QRect()

    def _save_tiles(self, rect: QRect) -> None:
        mask = self.doc.mask
        for ty in range(rect.top() // self.TILE, rect.bottom() // self.TILE + 1):
            for tx in range(rect.left() // self.TILE, rect.right() // self.TILE + 1):
                if (tx, ty) not in self._tiles:
                    tile = QRect(tx * self.TILE, ty * self.TILE, self.TILE, self.TILE)
                    self._tiles[(tx, ty)] = read_region(mask, tile & mask.rect())
