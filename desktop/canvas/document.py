"""The canvas document: a picture, a mask over it, and the results made from them.

The document is the model of the canvas (DESIGN.md "Canvas"): the scene observes its signals
and the view never touches pixels. Every edit of the image or the mask is a QUndoCommand on
``undo_stack``. Adding results is not an edit (results are cheap to make again and the strip
is a scratch area), but applying one is, and undo restores the image and the mask exactly.

The mask is 8-bit coverage (0..255): hard tools write 0/255, soft brushes and antialiased fill
edges write values in between. Consumers threshold at 128 (``mask >= 128``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPolygonF, QUndoStack

from core.imageio import atomic_write
from core.jobs import pixel_hash
from desktop.canvas.brush import combine, polygon_coverage
from desktop.canvas.commands import Patch, PatchCommand, ReplaceLayersCommand
from desktop.canvas.easel_file import Contents, DocumentError, decode, encode
from desktop.canvas.qimage import (
    GRAY,
    array_from_qimage,
    pixel_view,
    qimage_from_array,
    read_region,
    write_region,
)
from desktop.canvas.stroke import Stroke

THUMBNAIL = 128


@dataclass
class ResultEntry:
    """One result in the strip: its pixels (HxWx3, or HxWx4 with alpha), the job spec that made
    it, a label, and a thumbnail of at most THUMBNAIL px a side."""

    rgb: np.ndarray
    spec: dict[str, Any]
    label: str
    thumbnail: QImage


class Document(QObject):
    """Image + mask layers, results, an undo stack, and the file they belong to.

    Signals:
      changed(QRect)            pixels of the image or the mask changed inside the rect (a null
                                rect: everything). Emitted per brush dab, so painting is live.
      imageRegionChanged(QRect) / maskRegionChanged(QRect): the same, per layer (the scene uses
                                these to redraw only the layer that changed).
      sizeChanged()             the picture's size changed, or a new picture was set (open).
      maskChanged()             the mask's content changed; once per edit (a stroke: on release).
      resultsChanged()          results were added or removed.
      dirtyChanged(bool)        unsaved changes appeared or went away.
    """

    changed = Signal(QRect)
    imageRegionChanged = Signal(QRect)
    maskRegionChanged = Signal(QRect)
    sizeChanged = Signal()
    maskChanged = Signal()
    resultsChanged = Signal()
    dirtyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.image = QImage()
        self.mask = QImage()
        self.results: list[ResultEntry] = []
        self.undo_stack = QUndoStack(self)
        self.source_path: str | None = None
        # sha256 (core.jobs.pixel_hash) of the picture as read from source_path: while the
        # pixels still hash to it, a job spec may name the file instead of embedding pixels.
        self.source_sha256: str | None = None
        self.path: str | None = None
        # The job spec of a picture that is itself a result (a generated picture sent to an
        # empty canvas); None for the user's own picture.
        self.picture_spec: dict[str, Any] | None = None
        self._results_modified = False
        self._dirty = False
        self._stroke: Stroke | None = None
        self.undo_stack.cleanChanged.connect(self._update_dirty)

    # ---- state ---------------------------------------------------------------------------

    def size(self) -> QSize:
        return self.image.size() if not self.image.isNull() else QSize()

    def is_empty(self) -> bool:
        """No picture yet."""
        return self.image.isNull()

    def is_dirty(self) -> bool:
        """Unsaved changes: an edit since the last save, or results added or removed."""
        return not self.undo_stack.isClean() or self._results_modified

    def image_array(self) -> np.ndarray:
        """The picture as HxWx3 uint8 (a copy)."""
        self._require_image()
        return np.ascontiguousarray(pixel_view(self.image, readonly=True)[..., :3])

    def alpha_array(self) -> np.ndarray | None:
        """The picture's alpha as HxW uint8 (a copy), or None where it is fully opaque."""
        self._require_image()
        alpha = pixel_view(self.image, readonly=True)[..., 3]
        return None if bool((alpha == 255).all()) else alpha.copy()

    def mask_array(self) -> np.ndarray:
        """The mask as HxW uint8 coverage (a copy); threshold at 128 for a binary mask."""
        self._require_image()
        return array_from_qimage(self.mask)

    def mask_is_empty(self) -> bool:
        return self.mask.isNull() or not pixel_view(self.mask, readonly=True).any()

    # ---- open ----------------------------------------------------------------------------

    def set_image(self, rgba_or_rgb: np.ndarray, source_path: str | None = None,
                  spec: dict[str, Any] | None = None) -> None:
        """A new picture (this is "open"): clears the mask, the results and the undo history.

        Accepts HxWx3 or HxWx4 uint8 (HxW grey is widened to RGB). ``spec``: the job spec
        that made the picture, when it is a result.
        """
        a = np.asarray(rgba_or_rgb)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise DocumentError(f"A picture must be HxWx3 or HxWx4 pixels, got {a.shape}.")
        try:
            image = qimage_from_array(a)
        except ValueError as exc:
            raise DocumentError(str(exc)) from exc
        self._end_stroke()
        mask = QImage(image.size(), GRAY)
        mask.fill(0)
        had_results = bool(self.results)
        self.image, self.mask, self.results = image, mask, []
        self.source_path = str(source_path) if source_path else None
        self.source_sha256 = pixel_hash(self.image_array()) if source_path else None
        self.path = None
        self.picture_spec = dict(spec) if spec else None
        self.undo_stack.clear()
        self._results_modified = False
        self._announce_all()
        if had_results:
            self.resultsChanged.emit()
        self._update_dirty()

    # ---- mask edits ----------------------------------------------------------------------

    def set_mask(self, mask_array: np.ndarray, text: str = "Set mask") -> None:
        """Replace the mask (HxW uint8 coverage, or bool) as one undoable edit."""
        self._require_image()
        m = np.asarray(mask_array)
        if m.dtype == bool:
            m = m.astype(np.uint8) * 255
        if m.dtype != np.uint8 or m.shape != (self.image.height(), self.image.width()):
            raise DocumentError(
                f"The mask must be {self.image.height()}x{self.image.width()} uint8, "
                f"got {m.shape} {m.dtype}.")
        self._push([Patch.between("mask", pixel_view(self.mask, readonly=True), m)], text)

    def clear_mask(self) -> None:
        self._require_image()
        self.set_mask(np.zeros((self.image.height(), self.image.width()), np.uint8), "Clear mask")

    def invert_mask(self) -> None:
        self._require_image()
        self.set_mask(255 - pixel_view(self.mask, readonly=True), "Invert mask")

    def fill_polygon(self, points: list[QPointF] | QPolygonF, subtract: bool = False,
                     text: str | None = None) -> bool:
        """Fill a polygon (image coordinates) into the mask, or cut it out; one undo step.

        Returns False when the polygon covers no pixel (nothing is pushed).
        """
        self._require_image()
        cov = polygon_coverage(points, self.image.width(), self.image.height())
        if cov is None:
            return False
        rect, coverage = cov
        before = read_region(self.mask, rect)
        after = combine(before, coverage, add=not subtract)
        patch = Patch.between("mask", before, after, (rect.x(), rect.y()))
        if text is None:
            text = "Subtract from mask" if subtract else "Add to mask"
        return self._push([patch], text)

    def begin_stroke(self, size: float, hardness: float, erase: bool = False) -> Stroke:
        """Start a brush stroke on the mask; see Stroke. Ends a stroke still in progress."""
        self._require_image()
        self._end_stroke()
        self._stroke = Stroke(self, size, hardness, erase)
        return self._stroke

    def paint_stroke(self, points: list[QPointF], size: float, hardness: float = 1.0,
                     erase: bool = False, text: str | None = None) -> bool:
        """A whole stroke through ``points`` (image coordinates) as one undo step."""
        stroke = self.begin_stroke(size, hardness, erase)
        for p in points:
            stroke.to(p)
        return stroke.finish(text)

    # ---- results -------------------------------------------------------------------------

    def add_result(self, rgb: np.ndarray, spec: dict[str, Any], label: str) -> int:
        """Append a result to the strip (not an undoable edit); returns its index."""
        a = _check_pixels(rgb, "A result")
        thumb = qimage_from_array(a).scaled(
            THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        self.results.append(ResultEntry(a, dict(spec), str(label), thumb))
        self._results_modified = True
        self.resultsChanged.emit()
        self._update_dirty()
        return len(self.results) - 1

    def remove_result(self, i: int) -> None:
        del self.results[i]
        self._results_modified = True
        self.resultsChanged.emit()
        self._update_dirty()

    def apply_result(self, rgb: np.ndarray, text: str = "Apply result",
                     clear_mask: bool = True, spec: dict[str, Any] | None = None) -> None:
        """Put a result's pixels on the canvas as one undoable edit.

        The undo step holds what was replaced in the image and, with ``clear_mask``, the mask.
        HxWx3 input keeps the picture's alpha; HxWx4 replaces it. A result of another size
        (e.g. upscaled) replaces the picture; the mask is then cleared or, without
        ``clear_mask``, scaled along (nearest neighbour).
        """
        self._require_image()
        new = _check_pixels(rgb, "A result")
        h, w = new.shape[:2]
        old = pixel_view(self.image, readonly=True)
        mask = pixel_view(self.mask, readonly=True)
        if (h, w) == old.shape[:2]:
            after = old.copy()
            after[..., : new.shape[2]] = new
            patches = [Patch.between("image", old, after)]
            if clear_mask:
                patches.append(Patch.between("mask", mask, np.zeros_like(mask)))
            self._push(patches, text, result_spec=spec)
            return
        if clear_mask:
            new_mask = np.zeros((h, w), np.uint8)
        else:
            rows = np.arange(h) * mask.shape[0] // h
            cols = np.arange(w) * mask.shape[1] // w
            new_mask = mask[rows[:, None], cols[None, :]]
        if new.shape[2] == 3:
            new = np.concatenate([new, np.full((h, w, 1), 255, np.uint8)], axis=2)
        self._end_stroke()
        self.undo_stack.push(ReplaceLayersCommand(
            self, (self.image, self.mask),
            (qimage_from_array(new), qimage_from_array(new_mask)), text, result_spec=spec))

    def applied_spec(self) -> dict[str, Any] | None:
        """The spec of the result the picture now shows (None: no result on it).

        Follows undo and redo: it is the newest applied result still in the done part of
        the history, else the spec of the picture itself when that is a result."""
        for i in range(self.undo_stack.index() - 1, -1, -1):
            spec = getattr(self.undo_stack.command(i), "result_spec", None)
            if spec is not None:
                return spec
        return self.picture_spec

    def mark_modified(self) -> None:
        """Count the document as unsaved (e.g. recovered after a crash)."""
        self._results_modified = True
        self._update_dirty()

    # ---- files ---------------------------------------------------------------------------

    def snapshot(self) -> Contents:
        """What a .easel file holds, taken now and cheaply: the layers are shared copy-on-write
        (Qt's implicit sharing), so later edits do not reach the snapshot. Encoding it with
        ``easel_file.encode`` may then run in a worker thread, off the GUI thread (PNG
        compression of a 2048 px picture takes a few hundred ms)."""
        self._require_image()
        return Contents(
            image=QImage(self.image), mask=QImage(self.mask),
            results=[(r.rgb, dict(r.spec), r.label) for r in self.results],
            source_path=self.source_path, source_sha256=self.source_sha256,
            picture_spec=self.applied_spec())

    def snapshot_bytes(self) -> bytes:
        """The document as .easel file bytes (what save writes; used by autosave)."""
        return encode(self.snapshot())

    def save(self, path: str | os.PathLike) -> None:
        """Write a .easel file atomically; the document is then clean and belongs to ``path``."""
        data = self.snapshot_bytes()
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise DocumentError(f"Could not save {path}: {exc.strerror or exc}") from exc
        self.path = str(path)
        self._results_modified = False
        self.undo_stack.setClean()
        self._update_dirty()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Document:
        """Read a .easel file; DocumentError if it cannot be read or is not one."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DocumentError(f"Could not open {path}: {exc.strerror or exc}") from exc
        doc = cls.from_bytes(data, name=Path(path).name)
        doc.path = str(path)
        return doc

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "The document") -> Document:
        """A document from .easel bytes (e.g. an autosave), with no file of its own."""
        contents = decode(data, name)
        doc = cls()
        doc.image, doc.mask = contents.image, contents.mask
        doc.source_path, doc.source_sha256 = contents.source_path, contents.source_sha256
        doc.picture_spec = contents.picture_spec
        for rgb, spec, label in contents.results:
            doc.add_result(rgb, spec, label)
        doc._results_modified = False
        doc._update_dirty()
        return doc

    # ---- called by commands and strokes --------------------------------------------------

    def _write_patches(self, patches: list[Patch], after: bool, write: bool = True) -> None:
        self._cancel_stroke()
        for p in patches:
            layer = self.image if p.layer == "image" else self.mask
            if write:
                write_region(layer, p.rect, p.after if after else p.before)
            self._announce(p.layer, p.rect)
        if any(p.layer == "mask" for p in patches):
            self.maskChanged.emit()

    def _replace_layers(self, image: QImage, mask: QImage) -> None:
        self._cancel_stroke()
        resized = image.size() != self.image.size()
        # QImage(x) shares x's pixels until either side is written (Qt's copy-on-write), so the
        # command's stored layers stay untouched when this document is painted on later.
        self.image, self.mask = QImage(image), QImage(mask)
        self._announce_all(size=resized)

    def _announce(self, layer: str, rect: QRect) -> None:
        (self.imageRegionChanged if layer == "image" else self.maskRegionChanged).emit(rect)
        self.changed.emit(rect)

    def _announce_all(self, size: bool = True) -> None:
        if size:
            self.sizeChanged.emit()
        self.imageRegionChanged.emit(QRect())
        self.maskRegionChanged.emit(QRect())
        self.changed.emit(QRect())
        self.maskChanged.emit()

    def _push(self, patches: list[Patch | None], text: str, applied: bool = False,
              result_spec: dict[str, Any] | None = None) -> bool:
        real = [p for p in patches if p is not None]
        if not real:
            return False
        if not applied:
            self._end_stroke()
        self.undo_stack.push(PatchCommand(self, real, text, applied, result_spec))
        return True

    def _end_stroke(self) -> None:
        if self._stroke is not None:
            self._stroke.finish()

    def _cancel_stroke(self) -> None:
        # Undo or redo while the mouse is still down: the stroke is dropped (its pixels are
        # restored), so the history never holds a half stroke over a changed mask.
        if self._stroke is not None:
            self._stroke.cancel()

    def _update_dirty(self) -> None:
        dirty = self.is_dirty()
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirtyChanged.emit(dirty)

    def _require_image(self) -> None:
        if self.image.isNull():
            raise DocumentError("There is no picture yet: open an image first.")


def _check_pixels(rgb: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4) or 0 in a.shape:
        raise DocumentError(f"{what} must be HxWx3 or HxWx4 uint8 pixels, "
                            f"got {a.shape} {a.dtype}.")
    return np.ascontiguousarray(a)


