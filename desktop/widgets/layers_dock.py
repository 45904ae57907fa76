"""The Layers dock: the document's layer stack, topmost first, and the mask above them.

A row per layer with a thumbnail, its name (double-click renames it) and a check box that
shows or hides it; under the list, the selected layer's opacity and buttons to raise, lower
or delete it and to flatten the picture. Every change goes through a Document method, so it
is one undo command; the list only mirrors ``Document.layersChanged``. The mask row toggles
the mask overlay (a view setting, as View > Show mask).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas import Document, DocumentError, array_from_qimage, qimage_from_array

THUMB = 40
KIND_TIPS = {"picture": "the picture", "result": "an applied result",
             "panel": "a panel's layer", "paint": "a layer brought in from a file"}


class LayersDock(QWidget):
    """Shows and edits one Document's layers. ``maskVisibleChanged``: the user ticked the
    mask row (the window shows or hides the mask overlay)."""

    maskVisibleChanged = Signal(bool)
    problem = Signal(str)  # an edit the document refused, in words

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc: Document | None = None
        self._filling = False
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.itemChanged.connect(self._item_changed)
        self.list.currentRowChanged.connect(self._selection_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setMinimumWidth(40)
        self.opacity.setToolTip("The selected layer's opacity")
        self.opacity.valueChanged.connect(self._opacity_moved)
        self.opacity_label = QLabel("Opacity")
        self.raise_button = self._button("Raise", "Move the selected layer up",
                                         lambda: self._move(+1))
        self.lower_button = self._button("Lower", "Move the selected layer down",
                                         lambda: self._move(-1))
        self.delete_button = self._button("Delete", "Delete the selected layer",
                                          self._delete)
        self.flatten_button = self._button("Flatten", "Merge the visible layers into the "
                                           "picture (Layer > Flatten)", self._flatten)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.opacity_label)
        row.addWidget(self.opacity, 1)
        lay.addLayout(row)
        buttons = QGridLayout()  # two by two: the dock stays as narrow as the panels
        for i, b in enumerate((self.raise_button, self.lower_button, self.delete_button,
                               self.flatten_button)):
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            buttons.addWidget(b, i // 2, i % 2)
        lay.addLayout(buttons)
        self._mask_visible = True
        self.refresh()

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    # ---- the document -------------------------------------------------------------------

    def set_document(self, doc: Document) -> None:
        if self._doc is not None:
            for signal in (self._doc.layersChanged, self._doc.sizeChanged,
                           self._doc.maskChanged):
                signal.disconnect(self.refresh)
        self._doc = doc
        for signal in (doc.layersChanged, doc.sizeChanged, doc.maskChanged):
            signal.connect(self.refresh)
        self.refresh()

    def set_mask_visible(self, visible: bool) -> None:
        self._mask_visible = bool(visible)
        item = self.list.item(0)
        if item is not None and item.data(Qt.ItemDataRole.UserRole) == -1:
            self._filling = True
            item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            self._filling = False

    def layer_row(self, index: int) -> int:
        """The list row showing layer ``index`` (0 is the bottom layer)."""
        return len(self._layers()) - index

    def selected_layer(self) -> int:
        """The selected layer's index in the document (-1: none, or the mask row)."""
        item = self.list.currentItem()
        return -1 if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def refresh(self) -> None:
        selected = self.selected_layer()
        layers = self._layers()
        self._filling = True
        self.list.clear()
        if self._doc is not None and not self._doc.is_empty():
            mask = QListWidgetItem(QIcon(self._mask_thumbnail()), "Mask")
            mask.setData(Qt.ItemDataRole.UserRole, -1)
            mask.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                          | Qt.ItemFlag.ItemIsSelectable)
            mask.setCheckState(Qt.CheckState.Checked if self._mask_visible
                               else Qt.CheckState.Unchecked)
            mask.setToolTip("The mask: where jobs fill or edit (shown tinted red)")
            self.list.addItem(mask)
        for i in reversed(range(len(layers))):
            layer = layers[i]
            pix = QPixmap.fromImage(layer.image).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            item = QListWidgetItem(QIcon(pix), layer.name)
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                          | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable)
            item.setCheckState(Qt.CheckState.Checked if layer.visible
                               else Qt.CheckState.Unchecked)
            opacity = "" if layer.opacity >= 1 else f", {round(layer.opacity * 100)}% opacity"
            item.setToolTip(f"{layer.name}: {KIND_TIPS.get(layer.kind, 'a layer')}, "
                            f"{layer.image.width()}x{layer.image.height()} at ({layer.x}, "
                            f"{layer.y}){opacity}")
            self.list.addItem(item)
        if 0 <= selected < len(layers):
            self.list.setCurrentRow(self.layer_row(selected))
        elif layers:
            self.list.setCurrentRow(self.layer_row(len(layers) - 1))
        self._filling = False
        self._selection_changed()

    def _mask_thumbnail(self) -> QPixmap:
        """The mask as the canvas tints it: red where it covers, on white."""
        small = self._doc.mask.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                      Qt.TransformationMode.SmoothTransformation)
        cover = array_from_qimage(small).astype(np.float32)[..., None] / 255.0
        tint = np.array([255, 48, 48], np.float32) * cover + 255 * (1 - cover)
        return QPixmap.fromImage(qimage_from_array(np.rint(tint).astype(np.uint8)))

    def _layers(self) -> list:
        return [] if self._doc is None or self._doc.is_empty() else self._doc.layers

    # ---- edits --------------------------------------------------------------------------

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._filling or self._doc is None:
            return
        index = int(item.data(Qt.ItemDataRole.UserRole))
        checked = item.checkState() == Qt.CheckState.Checked
        if index == -1:
            self._mask_visible = checked
            self.maskVisibleChanged.emit(checked)
            return
        # The edit rebuilds the list: run it after the view is done with this item.
        QTimer.singleShot(0, lambda: self._apply_item(index, checked, item.text()))

    def _apply_item(self, index: int, checked: bool, text: str) -> None:
        if self._doc is None or not 0 <= index < len(self._layers()):
            return
        layer = self._doc.layers[index]
        if checked != layer.visible:
            self._edit(lambda: self._doc.set_layer_visible(index, checked))
        elif text.strip() != layer.name:
            self._edit(lambda: self._doc.rename_layer(index, text))

    def _selection_changed(self, *_: object) -> None:
        index = self.selected_layer()
        layers = self._layers()
        real = 0 <= index < len(layers)
        self.opacity.blockSignals(True)
        self.opacity.setValue(round(layers[index].opacity * 100) if real else 100)
        self.opacity.blockSignals(False)
        self.opacity.setEnabled(real)
        self.raise_button.setEnabled(real and index < len(layers) - 1)
        self.lower_button.setEnabled(real and index > 0)
        self.delete_button.setEnabled(real and layers[index].kind != "picture")
        self.flatten_button.setEnabled(len(layers) > 1)
        self.opacity_label.setText(f"Opacity {self.opacity.value()}%")

    def _opacity_moved(self, value: int) -> None:
        self.opacity_label.setText(f"Opacity {value}%")
        index = self.selected_layer()
        if index >= 0 and self._doc is not None:
            self._edit(lambda: self._doc.set_layer_opacity(index, value / 100.0))

    def _move(self, step: int) -> None:
        index = self.selected_layer()
        if index >= 0 and self._doc is not None:
            self._edit(lambda: self._doc.move_layer(index, index + step))
            self.list.setCurrentRow(self.layer_row(index + step))

    def _delete(self) -> None:
        index = self.selected_layer()
        if index >= 0 and self._doc is not None:
            self._edit(lambda: self._doc.remove_layer(index))

    def _flatten(self) -> None:
        if self._doc is not None and not self._doc.is_empty():
            self._edit(self._doc.flatten)

    def _edit(self, change) -> None:
        try:
            change()
        except DocumentError as exc:
            self.problem.emit(str(exc))
