"""The canvas document: a stack of layers (the picture, applied results, panel layers), a
mask over them, and the results made from them.

The document is the model of the canvas (DESIGN.md "Canvas"): the scene observes its signals
and the view never touches pixels. Every edit of a layer, the stack or the mask is a
QUndoCommand on ``undo_stack``. Adding results is not an edit (results are cheap to make
again and the strip is a scratch area), but applying one is, and undo restores the layers and
the mask exactly. Applying a result adds it as a layer at the box it changed (named by the job
that made it), or, with ``results_as_layers`` off, paints it into the picture.

What jobs read (``image_array``, ``alpha_array``) is the composite of the visible layers: what
the user sees. The stack itself is core.document's (Qt-free, shared with the command line);
here each layer's pixels are a QImage, so edits and the scene share them copy-on-write.

The mask is 8-bit coverage (0..255): hard tools write 0/255, soft brushes and antialiased fill
edges write values in between. Consumers threshold at 128 (``mask >= 128``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPolygonF, QUndoStack

from core.document import (
    Contents,
    DocumentError,
    Layer,
    LayerStack,
    composite,
    decode,
    encode,
)
from core.document.files import read_document
from core.document.stack import MAX_LAYERS, MAX_NAME
from core.imageio import atomic_write
from core.jobs import pixel_hash
from desktop.canvas.brush import combine, polygon_coverage
from desktop.canvas.commands import Patch, PatchCommand, StackCommand
from desktop.canvas.qimage import (
    GRAY,
    array_from_qimage,
    changed_bounds,
    pixel_view,
    qimage_from_array,
    read_region,
    write_region,
)
from desktop.canvas.stroke import Stroke

THUMBNAIL = 128


@dataclass(frozen=True)
class CanvasLayer:
    """One layer of the stack: RGBA8888 pixels placed at (x, y), and how it is shown. Edits
    make new records (``dataclasses.replace``) sharing the pixels; only the picture's pixels
    are ever written in place (by patch commands, which undo in order)."""

    name: str
    image: QImage
    x: int = 0
    y: int = 0
    visible: bool = True
    opacity: float = 1.0
    kind: str = "paint"
    spec: dict[str, Any] | None = None

    def core_layer(self, copy: bool = True) -> Layer:
        """The core.document Layer (pixels copied, or a view valid while this lives)."""
        pixels = array_from_qimage(self.image) if copy else pixel_view(self.image, True)
        return Layer(self.name, pixels, self.x, self.y, self.visible, self.opacity, self.kind,
                     self.spec)

    @staticmethod
    def of(layer: Layer) -> CanvasLayer:
        return CanvasLayer(layer.name, qimage_from_array(layer.pixels), layer.x, layer.y,
                           layer.visible, layer.opacity, layer.kind, layer.spec)


@dataclass
class ResultEntry:
    """One result in the strip: its pixels (HxWx3, or HxWx4 with alpha), the job spec that made
    it, a label, and a thumbnail of at most THUMBNAIL px a side."""

    rgb: np.ndarray
    spec: dict[str, Any]
    label: str
    thumbnail: QImage


class Document(QObject):
    """A layer stack + mask, results, an undo stack, and the file they belong to.

    Signals:
      changed(QRect)            pixels of the image or the mask changed inside the rect (a null
                                rect: everything). Emitted per brush dab, so painting is live.
      imageRegionChanged(QRect) / maskRegionChanged(QRect): the same, per layer (the scene uses
                                these to redraw only the layer that changed).
      sizeChanged()             the picture's size changed, or a new picture was set (open).
      maskChanged()             the mask's content changed; once per edit (a stroke: on release).
      resultsChanged()          results were added or removed.
      layersChanged()           the stack changed: a layer added, removed, moved, hidden,
                                faded, renamed, or the stack replaced (undo included).
      dirtyChanged(bool)        unsaved changes appeared or went away.
    """

    changed = Signal(QRect)
    imageRegionChanged = Signal(QRect)
    maskRegionChanged = Signal(QRect)
    sizeChanged = Signal()
    maskChanged = Signal()
    resultsChanged = Signal()
    layersChanged = Signal()
    dirtyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.layers: list[CanvasLayer] = []  # bottom first; one of kind "picture"
        self.mask = QImage()
        # Applying a result adds a layer (True) or paints into the picture (False).
        self.results_as_layers = True
        # The .ora/.psd file this document was brought in from, and what changed on the way.
        self.imported_from: str | None = None
        self.notes: list[str] = []
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

    @property
    def image(self) -> QImage:
        """The picture layer's pixels (RGBA8888, the canvas size); null with no picture."""
        i = self.picture_index()
        return self.layers[i].image if i >= 0 else QImage()

    def picture_index(self) -> int:
        """The picture layer's index in ``layers`` (-1: no picture yet)."""
        return next((i for i, la in enumerate(self.layers) if la.kind == "picture"), -1)

    def size(self) -> QSize:
        return self.image.size() if not self.image.isNull() else QSize()

    def is_empty(self) -> bool:
        """No picture yet."""
        return self.image.isNull()

    def is_dirty(self) -> bool:
        """Unsaved changes: an edit since the last save, or results added or removed."""
        return not self.undo_stack.isClean() or self._results_modified

    def composite_array(self) -> np.ndarray:
        """The visible layers composited: HxWx4 uint8 (a copy). With the picture alone, its
        pixels exactly."""
        self._require_image()
        views = [la.core_layer(copy=False) for la in self.layers]
        return composite(views, self.image.width(), self.image.height())

    def image_array(self) -> np.ndarray:
        """What the canvas shows as HxWx3 uint8 (a copy): the composite of the visible
        layers, which is the picture itself while it is the only layer."""
        return np.ascontiguousarray(self.composite_array()[..., :3])

    def alpha_array(self) -> np.ndarray | None:
        """The composite's alpha as HxW uint8 (a copy), or None where it is fully opaque."""
        alpha = self.composite_array()[..., 3]
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
        self.layers = [CanvasLayer("Picture", image, kind="picture")]
        self.mask, self.results = mask, []
        self.imported_from, self.notes = None, []
        self.source_path = str(source_path) if source_path else None
        self.source_sha256 = pixel_hash(self.image_array()) if source_path else None
        self.path = None
        self.picture_spec = dict(spec) if spec else None
        self.undo_stack.clear()
        self._results_modified = False
        self.layersChanged.emit()
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
                     clear_mask: bool = True, spec: dict[str, Any] | None = None,
                     name: str | None = None, as_layer: bool | None = None) -> None:
        """Put a result's pixels on the canvas as one undoable edit.

        As a layer (``as_layer``, default ``results_as_layers``): the pixels that differ from
        what the canvas shows become a new top layer named ``name`` (else by ``spec``'s job)
        at the box they cover; the others stay transparent, so the layer holds just what the
        job made. Otherwise the result is painted into the picture: HxWx3 input keeps the
        picture's alpha, HxWx4 replaces it. The undo step holds what was replaced, and with
        ``clear_mask`` the mask. A result of another size (e.g. upscaled) replaces the whole
        stack with one picture; the mask is then cleared or, without ``clear_mask``, scaled
        along (nearest neighbour).
        """
        self._require_image()
        new = _check_pixels(rgb, "A result")
        h, w = new.shape[:2]
        mask = pixel_view(self.mask, readonly=True)
        if (h, w) != (self.image.height(), self.image.width()):
            self._replace_picture(new, clear_mask, text, spec)
            return
        if not (self.results_as_layers if as_layer is None else as_layer):
            old = pixel_view(self.image, readonly=True)
            after = old.copy()
            after[..., : new.shape[2]] = new
            patches = [Patch.between("image", old, after)]
            if clear_mask:
                patches.append(Patch.between("mask", mask, np.zeros_like(mask)))
            self._push(patches, text, result_spec=spec)
            return
        shown = self.composite_array()
        differs = (shown[..., : new.shape[2]] != new).any(axis=2)
        box = changed_bounds(differs, np.zeros_like(differs))
        masks = None
        if clear_mask and mask.any():
            cleared = QImage(self.mask.size(), GRAY)
            cleared.fill(0)
            masks = (self.mask, cleared)
        if box is None:  # the result is what the canvas shows already: no layer
            if masks is not None:
                self._push([Patch.between("mask", mask, np.zeros_like(mask))], text,
                           result_spec=spec)
            return
        x0, y0, x1, y1 = box
        pixels = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
        pixels[..., 3] = 255
        pixels[..., : new.shape[2]] = new[y0:y1, x0:x1]
        pixels[~differs[y0:y1, x0:x1]] = 0  # unchanged: see through to the layers below
        layer = CanvasLayer(_layer_name(name, spec), qimage_from_array(pixels), x0, y0,
                            kind="result", spec=dict(spec) if spec else None)
        self._push_stack([*self.layers, layer], text, masks=masks, result_spec=spec)

    def _replace_picture(self, new: np.ndarray, clear_mask: bool, text: str,
                         spec: dict[str, Any] | None) -> None:
        h, w = new.shape[:2]
        mask = pixel_view(self.mask, readonly=True)
        if clear_mask:
            new_mask = np.zeros((h, w), np.uint8)
        else:
            rows = np.arange(h) * mask.shape[0] // h
            cols = np.arange(w) * mask.shape[1] // w
            new_mask = mask[rows[:, None], cols[None, :]]
        picture = CanvasLayer("Picture", qimage_from_array(new), kind="picture")
        self._push_stack([picture], text, masks=(self.mask, qimage_from_array(new_mask)),
                         result_spec=spec)

    # ---- layers --------------------------------------------------------------------------

    def add_layer(self, pixels: np.ndarray, name: str, x: int = 0, y: int = 0,
                  kind: str = "panel", spec: dict[str, Any] | None = None,
                  text: str | None = None) -> int:
        """A new top layer (e.g. a panel's material map), one undo step; returns its index."""
        self._require_image()
        if len(self.layers) >= MAX_LAYERS:
            raise DocumentError(f"A document holds at most {MAX_LAYERS} layers.")
        if kind not in ("result", "panel", "paint"):
            raise DocumentError(f"A layer's kind is result, panel or paint, not {kind!r}.")
        layer = CanvasLayer(str(name)[:MAX_NAME] or "Layer",
                            qimage_from_array(_check_pixels(pixels, "A layer")), int(x), int(y),
                            kind=kind, spec=dict(spec) if spec else None)
        self._push_stack([*self.layers, layer], text or f"Add layer {layer.name}")
        return len(self.layers) - 1

    def set_layer_visible(self, i: int, visible: bool) -> None:
        layer = self._layer(i)
        if layer.visible != bool(visible):
            self._edit_layer(i, replace(layer, visible=bool(visible)),
                             f"{'Show' if visible else 'Hide'} {layer.name}")

    def set_layer_opacity(self, i: int, opacity: float) -> None:
        """Fade a layer; a run of changes to one layer (a slider dragged) is one undo step."""
        layer = self._layer(i)
        opacity = min(max(float(opacity), 0.0), 1.0)
        if layer.opacity != opacity:
            self._edit_layer(i, replace(layer, opacity=opacity),
                             f"Opacity of {layer.name}", merge_key=("opacity", id(layer.image)))

    def rename_layer(self, i: int, name: str) -> None:
        layer = self._layer(i)
        name = str(name).strip()[:MAX_NAME]
        if name and name != layer.name:
            self._edit_layer(i, replace(layer, name=name), f"Rename {layer.name} to {name}")

    def move_layer(self, i: int, to: int) -> None:
        """Move layer ``i`` to index ``to`` (0 is the bottom)."""
        layer = self._layer(i)
        to = min(max(int(to), 0), len(self.layers) - 1)
        if to != i:
            layers = [la for j, la in enumerate(self.layers) if j != i]
            layers.insert(to, layer)
            self._push_stack(layers, f"{'Raise' if to > i else 'Lower'} {layer.name}")

    def remove_layer(self, i: int) -> None:
        layer = self._layer(i)
        if layer.kind == "picture":
            raise DocumentError("The picture layer cannot be deleted; flatten or hide it.")
        self._push_stack([la for j, la in enumerate(self.layers) if j != i],
                         f"Delete layer {layer.name}")

    def flatten(self) -> bool:
        """Merge the visible layers into the picture (hidden ones are dropped); one undo
        step. False when there is nothing to merge."""
        self._require_image()
        if len(self.layers) == 1 and self.layers[0].visible and self.layers[0].opacity == 1:
            return False
        picture = CanvasLayer("Picture", qimage_from_array(self.composite_array()),
                              kind="picture")
        self._push_stack([picture], "Flatten")
        return True

    def _layer(self, i: int) -> CanvasLayer:
        self._require_image()
        if not 0 <= i < len(self.layers):
            raise DocumentError(f"There is no layer {i + 1}.")
        return self.layers[i]

    def _edit_layer(self, i: int, layer: CanvasLayer, text: str,
                    merge_key: object = None) -> None:
        layers = list(self.layers)
        layers[i] = layer
        self._push_stack(layers, text, merge_key=merge_key)

    def _push_stack(self, layers: list[CanvasLayer], text: str,
                    masks: tuple[QImage, QImage] | None = None,
                    result_spec: dict[str, Any] | None = None, merge_key: object = None) -> None:
        self._end_stroke()
        self.undo_stack.push(StackCommand(self, self.layers, layers, text, masks, result_spec,
                                          merge_key))

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
        """What a .easel file holds, taken now: the layers and the mask are copied (a memcpy
        each), so later edits do not reach the snapshot, and encoding it with
        ``core.document.encode`` may run in a worker thread, off the GUI thread (PNG
        compression of a 2048 px picture takes a few hundred ms)."""
        self._require_image()
        stack = LayerStack(self.image.width(), self.image.height(),
                           [la.core_layer() for la in self.layers],
                           mask=array_from_qimage(self.mask))
        return Contents(
            stack=stack, results=[(r.rgb, dict(r.spec), r.label) for r in self.results],
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
        self.imported_from = None
        self._results_modified = False
        self.undo_stack.setClean()
        self._update_dirty()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Document:
        """Read a .easel document, or an OpenRaster (.ora) or Photoshop (.psd) file's layers
        (``notes`` then says what changed on the way in); DocumentError if it cannot be
        read."""
        contents, kind = read_document(path)
        doc = cls.from_contents(contents)
        if kind == "easel":
            doc.path = str(path)
        else:  # saving it makes an .easel document; the file itself is never overwritten
            doc.imported_from, doc.notes = str(path), list(contents.stack.notes)
        return doc

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "The document") -> Document:
        """A document from .easel bytes (e.g. an autosave), with no file of its own."""
        return cls.from_contents(decode(data, name))

    @classmethod
    def from_contents(cls, contents: Contents) -> Document:
        doc = cls()
        stack = contents.stack
        doc.layers = [CanvasLayer.of(layer) for layer in stack.layers]
        mask = stack.mask if stack.mask is not None else np.zeros(
            (stack.height, stack.width), np.uint8)
        doc.mask = qimage_from_array(np.ascontiguousarray(mask))
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

    def _set_stack(self, layers: list[CanvasLayer], mask: QImage | None) -> None:
        self._cancel_stroke()
        size = self.size()
        self.layers = list(layers)
        if mask is not None:
            # QImage(x) shares x's pixels until either side is written (Qt's copy-on-write),
            # so the command's stored mask stays untouched when this one is painted on later.
            self.mask = QImage(mask)
        self.layersChanged.emit()
        if mask is not None or self.size() != size:
            self._announce_all(size=self.size() != size)
        else:
            self.imageRegionChanged.emit(QRect())
            self.changed.emit(QRect())

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


def _layer_name(name: str | None, spec: dict[str, Any] | None) -> str:
    """A result layer's name: the label given, else the job's kind and seed."""
    if name:
        return str(name)[:MAX_NAME]
    kind = str((spec or {}).get("kind") or "Result").replace("_", " ").capitalize()
    seed = (spec or {}).get("seed")
    return f"{kind} (seed {seed})" if isinstance(seed, int) else kind


def _check_pixels(rgb: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4) or 0 in a.shape:
        raise DocumentError(f"{what} must be HxWx3 or HxWx4 uint8 pixels, "
                            f"got {a.shape} {a.dtype}.")
    return np.ascontiguousarray(a)


