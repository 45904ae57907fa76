"""The two sets of faces a user direction is made from: "these" (with the quality) and
"those" (without it), with a name, the counts and how many more each side needs."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.panels.latent_model import Pick
from desktop.widgets.thumbnail_list import ThumbnailList

SIDES = {"these": "These (with it)", "those": "Those (without)"}


class DirectionSets(QGroupBox):
    """Collects picks on two sides; ``makeRequested`` asks the owner to make the direction."""

    makeRequested = Signal()

    def __init__(self, minimum: int, parent: QWidget | None = None) -> None:
        super().__init__("Your directions", parent)
        self.minimum = minimum
        self._picks: dict[str, list[Pick]] = {side: [] for side in SIDES}
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name, e.g. freckles")
        self.name.setMaxLength(40)
        self.lists: dict[str, ThumbnailList] = {}
        self.counts: dict[str, QLabel] = {}
        row = QHBoxLayout()
        for side in SIDES:
            lst = ThumbnailList(icon=28, draggable=False)
            lst.setFixedHeight(2 * 36 + 6)
            lst.setToolTip(f"Faces {'with' if side == 'these' else 'without'} the quality "
                           "(right-click a face in the grid to add it; Delete removes one)")
            lst.deleteRequested.connect(lambda r, s=side: self.remove(s, r))
            self.lists[side] = lst
            self.counts[side] = QLabel()
            self.counts[side].setWordWrap(True)
            col = QVBoxLayout()
            col.addWidget(self.counts[side])
            col.addWidget(lst)
            row.addLayout(col)
        make = QPushButton("Make direction from these / those")
        make.setToolTip(f"At least {minimum} faces on each side; the new slider appears "
                        "under 'Your directions'")
        make.clicked.connect(self.makeRequested)
        lay = QVBoxLayout(self)
        lay.addWidget(self.name)
        lay.addLayout(row)
        lay.addWidget(make)
        self._update_counts()

    def picks(self, side: str) -> list[Pick]:
        return list(self._picks[side])

    def direction_name(self) -> str:
        return " ".join(self.name.text().split())

    def add(self, side: str, picks: list[Pick]) -> None:
        for pick in picks:
            if all(p.key != pick.key for p in self._picks[side]):
                self._picks[side].append(pick)
                self.lists[side].add_thumbnail(pick.image, pick.key, pick.label)
        self._update_counts()

    def remove(self, side: str, row: int) -> None:
        del self._picks[side][row]
        self.lists[side].takeItem(row)
        self._update_counts()

    def clear(self) -> None:
        for side in SIDES:
            self._picks[side] = []
            self.lists[side].clear()
        self._update_counts()

    def _update_counts(self) -> None:
        for side, text in SIDES.items():
            n = len(self._picks[side])
            more = f" — {self.minimum - n} more needed" if n < self.minimum else ""
            self.counts[side].setText(f"{text}: {n}{more}")
