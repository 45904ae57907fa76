"""The undo commands of a Document.

Nearly every edit is "these pixels of this layer, inside this rect, were X and are now Y": a
brush stroke, a rectangle or lasso fill, clear/invert/set mask, and applying a same-size result
(image and mask together, one undo step). ``PatchCommand`` stores only the changed rects, so
undo stays cheap on big images. Only an edit that changes the picture's size (e.g. applying an
upscaled result) or the layer stack (adding, hiding, fading, reordering, flattening layers;
applying a result as a layer) swaps whole stacks: ``StackCommand``.

Commands call back into the document's private ``_write_patches``/``_replace_layers``, which
write the pixels and emit the change signals; the scene only ever reacts to those signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QUndoCommand

from desktop.canvas.qimage import changed_bounds

if TYPE_CHECKING:
    from desktop.canvas.document import CanvasLayer, Document

LAYERS = ("image", "mask")


@dataclass
class Patch:
    """Pixels of one layer inside ``rect``, before and after an edit."""

    layer: str
    rect: QRect
    before: np.ndarray
    after: np.ndarray

    @staticmethod
    def between(layer: str, before: np.ndarray, after: np.ndarray,
                origin: tuple[int, int] = (0, 0)) -> Patch | None:
        """The patch of the pixels that differ between two same-shape arrays whose top-left
        corner is at ``origin`` in the layer; None when nothing differs."""
        if layer not in LAYERS:
            raise ValueError(f"Unknown layer {layer!r}")
        box = changed_bounds(before, after)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        rect = QRect(origin[0] + x0, origin[1] + y0, x1 - x0, y1 - y0)
        return Patch(layer, rect, before[y0:y1, x0:x1].copy(), after[y0:y1, x0:x1].copy())


class PatchCommand(QUndoCommand):
    """Replace the pixels of one or more regions: redo writes ``after``, undo ``before``.

    ``applied=True`` says the edit is already on the canvas (a brush stroke is painted live,
    dab by dab), so the first redo, run by ``QUndoStack.push``, only announces it.
    """

    def __init__(self, doc: Document, patches: list[Patch], text: str,
                 applied: bool = False, result_spec: dict | None = None) -> None:
        super().__init__(text)
        self._doc = doc
        self.patches = patches
        self._applied = applied
        self.result_spec = result_spec  # the job spec of an applied result, else None

    def redo(self) -> None:
        self._doc._write_patches(self.patches, after=True, write=not self._applied)
        self._applied = False

    def undo(self) -> None:
        self._doc._write_patches(self.patches, after=False)


class MaskPatchCommand(PatchCommand):
    """One region of the mask, e.g. a brush stroke or a fill."""

    def __init__(self, doc: Document, rect: QRect, before: np.ndarray, after: np.ndarray,
                 text: str, applied: bool = False) -> None:
        super().__init__(doc, [Patch("mask", QRect(rect), before, after)], text, applied)


class StackCommand(QUndoCommand):
    """Swap the document's layer stack (and, when given, its mask) for another: adding,
    removing, reordering, hiding, renaming, fading or flattening layers, applying a result as
    a layer, and edits that change the picture's size.

    Layers are immutable records sharing their pixels (QImage's copy-on-write), so keeping the
    stack before and after costs little. ``merge_key``: consecutive commands with the same key
    (an opacity slider dragged) merge into one undo step.
    """

    MERGE_ID = 0x1A7E

    def __init__(self, doc: Document, before: list[CanvasLayer], after: list[CanvasLayer],
                 text: str, masks: tuple[QImage, QImage] | None = None,
                 result_spec: dict | None = None, merge_key: object = None) -> None:
        super().__init__(text)
        self._doc = doc
        self.result_spec = result_spec
        self.merge_key = merge_key
        self._before, self._after = list(before), list(after)
        self._masks = None if masks is None else (QImage(masks[0]), QImage(masks[1]))

    def id(self) -> int:
        return self.MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, StackCommand) or other.merge_key != self.merge_key \
                or self._masks is not None or other._masks is not None:
            return False
        self._after = other._after
        return True

    def redo(self) -> None:
        self._doc._set_stack(self._after, None if self._masks is None else self._masks[1])

    def undo(self) -> None:
        self._doc._set_stack(self._before, None if self._masks is None else self._masks[0])
