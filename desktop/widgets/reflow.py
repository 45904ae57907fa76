"""A row of equal widgets that wraps onto more rows when the panel is too narrow for all of
them side by side (the Latent panel's slots A, B and C), so a dock of any width shows them
without scrolling sideways."""

from __future__ import annotations

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QGridLayout, QWidget


class ReflowRow(QWidget):
    """Lays ``widgets`` out in as many columns as fit its width (at least one)."""

    def __init__(self, widgets: list[QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._widgets = widgets
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.columns = 0
        self._arrange(len(widgets))

    def _cell_width(self) -> int:
        return max(w.minimumSizeHint().width() for w in self._widgets)

    def _arrange(self, columns: int) -> None:
        if columns == self.columns:
            return
        self.columns = columns
        for w in self._widgets:
            self._grid.removeWidget(w)
        for i, w in enumerate(self._widgets):
            self._grid.addWidget(w, i // columns, i % columns)
        for c in range(len(self._widgets)):
            self._grid.setColumnStretch(c, 1 if c < columns else 0)
        # Narrower than all the columns is allowed (the widget then wraps); the height is that
        # of the rows it has now.
        rows = -(-len(self._widgets) // columns)
        height = max(w.minimumSizeHint().height() for w in self._widgets)
        self.setMinimumSize(self._cell_width(), rows * height
                            + (rows - 1) * self._grid.verticalSpacing())

    def columns_for(self, width: int) -> int:
        spacing = max(0, self._grid.horizontalSpacing())
        fit = (width + spacing) // (self._cell_width() + spacing)
        return max(1, min(len(self._widgets), fit))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        self._arrange(self.columns_for(event.size().width()))
        super().resizeEvent(event)
