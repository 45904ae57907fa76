"""The canvas: Document (model) -> CanvasScene (observes it) -> CanvasView (zoom, pan, tools).

See DESIGN.md "Canvas". Every edit of the document is a QUndoCommand on ``Document.undo_stack``.
"""

from core.document import DocumentError
from desktop.canvas.commands import MaskPatchCommand, Patch, PatchCommand, StackCommand
from desktop.canvas.document import CanvasLayer, Document, ResultEntry
from desktop.canvas.qimage import array_from_qimage, dropped, qimage_from_array
from desktop.canvas.scene import CanvasScene
from desktop.canvas.stroke import Stroke
from desktop.canvas.tools import BrushTool, LassoTool, MoveTool, RectTool, Tool
from desktop.canvas.view import CanvasView

__all__ = [
    "BrushTool",
    "CanvasLayer",
    "CanvasScene",
    "CanvasView",
    "Document",
    "DocumentError",
    "LassoTool",
    "MaskPatchCommand",
    "MoveTool",
    "Patch",
    "PatchCommand",
    "RectTool",
    "ResultEntry",
    "StackCommand",
    "Stroke",
    "Tool",
    "array_from_qimage",
    "dropped",
    "qimage_from_array",
]
