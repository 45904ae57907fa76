"""One slider per latent direction, grouped by attribute.

Amounts are in "class gaps" (core.algorithms.directions): 1.0 moves a face by the distance
between the mean face without the attribute and the mean face with it, so -2..2 covers
"much less" to "much more" for every direction alike.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

STEPS = 100  # slider ticks per class gap
LIMIT = 2.0  # slider range: -LIMIT..LIMIT class gaps
FEATURES = "Features"  # group of the two-class attributes (smiling, glasses, ...)
USER = "Your directions"


def group_of(name: str, user: bool) -> tuple[str, str]:
    """(group title, slider label) of a direction name such as ``hair_colour:blond``."""
    if user:
        return USER, name
    attr, _, cls = name.partition(":")
    if cls:
        return attr.replace("_", " ").capitalize(), cls
    return FEATURES, attr.replace("_", " ")


class DirectionSliders(QWidget):
    """Emits ``changed`` on every slider move (while dragging too)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sliders: dict[str, QSlider] = {}
        self._values: dict[str, QLabel] = {}
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._empty = QLabel()
        self._empty.setWordWrap(True)
        self._lay.addWidget(self._empty)
        self.set_directions([], [])

    def set_directions(self, names: list[str], user: list[str],
                       empty_text: str = "This model has no directions yet.") -> None:
        """Rebuild the sliders; amounts of names that remain are kept."""
        kept = dict(self.amounts())
        while self._lay.count() > 1:
            w = self._lay.takeAt(1).widget()
            if w is not None:
                w.deleteLater()
        self.sliders, self._values = {}, {}
        groups: dict[str, QFormLayout] = {}
        user_set = set(user)
        def order(name: str) -> tuple[bool, bool, str, str]:  # features first, yours last
            title, label = group_of(name, name in user_set)
            return name in user_set, title != FEATURES, title, label

        for name in sorted(names, key=order):
            title, label = group_of(name, name in user_set)
            if title not in groups:
                box = QGroupBox(title)
                groups[title] = QFormLayout(box)
                self._lay.addWidget(box)
            groups[title].addRow(label, self._row(name))
        self._empty.setText("" if names else empty_text)
        self._empty.setVisible(not names)
        self.set_amounts(kept)

    def _row(self, name: str) -> QWidget:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(round(-LIMIT * STEPS), round(LIMIT * STEPS))
        slider.setPageStep(STEPS // 4)
        slider.setTickInterval(STEPS)
        slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        slider.setToolTip(f"Move along {name!r}: 1 is one class gap (the difference between "
                          "the average face without and with it); negative takes it away.")
        value = QLabel("0.00")
        value.setMinimumWidth(40)
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        slider.valueChanged.connect(lambda v, lab=value: self._moved(lab, v))
        self.sliders[name] = slider
        self._values[name] = value
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(slider, 1)
        lay.addWidget(value)
        return row

    def _moved(self, label: QLabel, value: int) -> None:
        label.setText(f"{value / STEPS:+.2f}" if value else "0.00")
        self.changed.emit()

    def names(self) -> list[str]:
        return sorted(self.sliders)

    def amounts(self) -> tuple[tuple[str, float], ...]:
        """The non-zero amounts, by name."""
        return tuple((n, s.value() / STEPS) for n, s in sorted(self.sliders.items())
                     if s.value())

    def set_amounts(self, amounts: dict[str, float]) -> list[str]:
        """Set the named sliders (others go to 0) with one ``changed``; returns the names this
        model has no slider for."""
        unknown = [n for n in amounts if n not in self.sliders]
        for name, slider in self.sliders.items():
            slider.blockSignals(True)
            value = round(float(amounts.get(name, 0.0)) * STEPS)
            slider.setValue(value)
            self._values[name].setText(f"{value / STEPS:+.2f}" if value else "0.00")
            slider.blockSignals(False)
        self.changed.emit()
        return unknown

    def reset(self) -> None:
        self.set_amounts({})
