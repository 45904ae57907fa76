"""Image > Upscale…: which upscaler, with its scale and the size the picture will have, and
the tile size (smaller tiles need less memory and give the same pixels).

Lists Easel's own upscalers and those imported from the user's files (Real-ESRGAN, SPAN...:
Models > Manage models > Import), each with its scale; the size line follows the choice.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from core.specs.upscale import TILES


def upscaler_label(model: dict[str, Any]) -> str:
    """"RealESRGAN_x2plus: x2, ESRGAN / Real-ESRGAN (RRDB), yours"."""
    whose = "yours" if model["source"] == "user" else "shipped"
    return f"{model['name']}: x{model['scale']}, {model['kind']}, {whose}"


class UpscaleDialog(QDialog):
    """Choose one of ``models`` (core.catalog.upscalers()) for a ``width`` x ``height``
    picture, and a tile size; ``current`` (a name) is chosen first when it is listed."""

    def __init__(self, models: list[dict[str, Any]], width: int, height: int,
                 current: str = "", tile: int = 192, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upscale")
        self._size = (width, height)
        self.model = QComboBox()
        for m in models:
            self.model.addItem(upscaler_label(m), m)
        names = [m["name"] for m in models]
        self.model.setCurrentIndex(names.index(current) if current in names else 0)
        self.model.setToolTip("Your own upscalers (Real-ESRGAN, SPAN...) appear here once "
                              "imported: Models > Manage models > Import")
        self.tile = QSpinBox(minimum=TILES[0], maximum=TILES[1], value=tile, suffix=" px")
        self.tile.setSingleStep(32)
        self.tile.setToolTip("The picture goes through the upscaler in tiles of this size: "
                             "smaller tiles need less memory and give the same pixels")
        self.size_label = QLabel()
        self.model.currentIndexChanged.connect(self._update)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Upscaler", self.model)
        form.addRow("Size", self.size_label)
        form.addRow("Tiles", self.tile)
        form.addRow(buttons)
        self._update()

    def chosen(self) -> dict[str, Any]:
        return self.model.currentData()

    def _update(self) -> None:
        w, h = self._size
        s = self.chosen()["scale"]
        self.size_label.setText(f"{w} × {h} px → {w * s} × {h * s} px")


def ask_upscaler(parent: QWidget, models: list[dict[str, Any]], width: int, height: int,
                 current: str, tile: int) -> tuple[str, int] | None:
    """The name of the upscaler the user chose and the tile size, or None (cancelled)."""
    dialog = UpscaleDialog(models, width, height, current, tile, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.chosen()["name"], dialog.tile.value()
