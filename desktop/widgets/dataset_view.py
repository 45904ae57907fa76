"""What a dropped training folder holds: the Train panel's dataset view.

It shows the report of ``easel dataset FOLDER --json`` (``FolderReport.to_dict()``): a summary
line, a grid of thumbnails, the files set aside and why, and the near-duplicate groups. The
report is made elsewhere (the scan decodes every image, which is far too slow for the GUI
thread); this widget only reads thumbnails, and does so a few at a time from a timer, each
through a QImageReader told to decode at thumbnail size (JPEG decodes at 1/8 scale directly),
so a folder of thousands of photos never holds the event loop for more than a few
milliseconds. Only the first ``MAX_THUMBNAILS`` files get a thumbnail.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImageIOHandler, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

ICON = 64  # thumbnail size, px
MAX_THUMBNAILS = 200  # a grid of more would take long to fill and says little more
TICK_BUDGET_S = 0.008  # thumbnail decoding per timer tick, so input stays responsive
TICK_INTERVAL_MS = 5
WARNING_COLOUR = "#c62828"
PATH_ROLE = Qt.ItemDataRole.UserRole


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def summary_text(report: dict[str, Any], minimum: int = 0) -> tuple[str, bool]:
    """The summary line for a report, and whether it is short of ``minimum`` usable images:
    "2,000 usable images · 3 skipped · 5 near-duplicate groups · sides 48–256 px (median
    128) · 60% square, 25% landscape, 15% portrait"."""
    count = int(report.get("count", len(report.get("files", []))))
    short = count < minimum
    parts = [f"{_plural(count, 'usable image')}; at least {minimum:,} needed" if short
             else _plural(count, "usable image")]
    skipped = len(report.get("skipped", []))
    if skipped:
        parts.append(f"{skipped:,} skipped")
    groups = len(report.get("duplicates", []))
    if groups:
        parts.append(_plural(groups, "near-duplicate group"))
    spread = report.get("spread") or {}
    if count and spread:
        parts.append(f"sides {spread['min_side']}–{spread['max_side']} px "
                     f"(median {spread['median_side']})")
        parts.append(", ".join(f"{round(100 * spread[k] / count)}% {k}"
                               for k in ("square", "landscape", "portrait")))
    return " · ".join(parts), short


def _placeholder() -> QIcon:
    pix = QPixmap(ICON, ICON)
    pix.fill(QColor(90, 90, 90))
    return QIcon(pix)


class DatasetView(QWidget):
    """Summary, thumbnails (filled in over time) and the skipped and near-duplicate lists.

    ``grid``, ``skipped_list`` and ``duplicates_list`` are QListWidgets on three tabs; a
    double-click on a duplicate group selects its files in the grid.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._report: dict[str, Any] = {}
        self._minimum = 0
        self._root = Path()
        self._next = 0  # the next grid row whose thumbnail is to be read
        self._items: dict[str, QListWidgetItem] = {}  # relative path -> grid item

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.shown_label = QLabel()  # "showing 200 of 2,000"
        self.shown_label.setVisible(False)

        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(ICON, ICON))
        self.grid.setGridSize(QSize(ICON + 8, ICON + 8))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setMovement(QListWidget.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)

        self.skipped_list = QListWidget()
        self.skipped_list.setWordWrap(False)
        self.duplicates_list = QListWidget()
        self.duplicates_list.setToolTip("Double-click a group to select its files in the grid")
        self.duplicates_list.itemActivated.connect(self._show_group)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        grid_page = QWidget()
        grid_layout = QVBoxLayout(grid_page)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addWidget(self.shown_label)
        grid_layout.addWidget(self.grid)
        self.tabs.addTab(grid_page, "Images")
        self.tabs.addTab(self.skipped_list, "Skipped")
        self.tabs.addTab(self.duplicates_list, "Near-duplicates")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs)

        # A child of the widget, so it dies with it; clear() stops it explicitly too.
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_INTERVAL_MS)
        self._timer.timeout.connect(self._load_some)
        self.clear()

    # -- public API ---------------------------------------------------------------------------

    def set_report(self, report: dict[str, Any]) -> None:
        """Show a folder report (the JSON of ``easel dataset FOLDER --json``) and start
        reading thumbnails."""
        self.clear()
        self._report = report
        self._root = Path(report.get("root", ""))
        files = list(report.get("files", []))
        shown = files[:MAX_THUMBNAILS]
        placeholder = _placeholder()
        self.grid.setUpdatesEnabled(False)
        for rel in shown:
            item = QListWidgetItem(placeholder, "")
            item.setData(PATH_ROLE, rel)
            item.setToolTip(rel)
            self.grid.addItem(item)
            self._items[rel] = item
        self.grid.setUpdatesEnabled(True)
        if len(files) > len(shown):
            self.shown_label.setText(f"showing {len(shown):,} of {len(files):,}")
            self.shown_label.setVisible(True)

        skipped = report.get("skipped", [])
        for entry in skipped:
            path, reason = str(entry.get("path", "")), str(entry.get("reason", ""))
            item = QListWidgetItem(f"{path} — {reason}")
            item.setToolTip(f"{path}\n{reason}")
            self.skipped_list.addItem(item)
        groups = report.get("duplicates", [])
        for group in groups:
            item = QListWidgetItem(f"{len(group)} files: " + ", ".join(group))
            item.setToolTip("\n".join(group))
            item.setData(PATH_ROLE, list(group))
            self.duplicates_list.addItem(item)
        self.tabs.setTabText(0, f"Images ({len(files):,})")
        self.tabs.setTabText(1, f"Skipped ({len(skipped):,})")
        self.tabs.setTabText(2, f"Near-duplicates ({len(groups):,})")
        self._update_summary()
        if shown:
            self._timer.start()

    def clear(self) -> None:
        """Show nothing and stop reading thumbnails."""
        self._timer.stop()
        self._report = {}
        self._next = 0
        self._items.clear()
        self.grid.clear()
        self.skipped_list.clear()
        self.duplicates_list.clear()
        self.shown_label.setVisible(False)
        self.tabs.setTabText(0, "Images")
        self.tabs.setTabText(1, "Skipped")
        self.tabs.setTabText(2, "Near-duplicates")
        self._update_summary()

    def set_minimum(self, n: int) -> None:
        """The fewest usable images training accepts; fewer turns the summary red."""
        self._minimum = max(0, int(n))
        self._update_summary()

    def report(self) -> dict[str, Any]:
        return self._report

    def below_minimum(self) -> bool:
        """Whether a report is shown and has fewer usable images than the minimum."""
        return bool(self._report) and summary_text(self._report, self._minimum)[1]

    def thumbnails_loaded(self) -> int:
        """Grid items whose file has been read (a file that fails keeps a marked tile)."""
        return self._next

    def thumbnails_total(self) -> int:
        return self.grid.count()

    def is_loading(self) -> bool:
        return self._timer.isActive()

    # -- internals ----------------------------------------------------------------------------

    def _update_summary(self) -> None:
        if not self._report:
            self.summary.setText("Drop a folder of images to see what it holds")
            self.summary.setStyleSheet("")
            return
        text, short = summary_text(self._report, self._minimum)
        self.summary.setText(text)
        self.summary.setStyleSheet(f"color: {WARNING_COLOUR};" if short else "")

    def _load_some(self) -> None:
        """Read thumbnails until this tick's time budget is spent (at least one per tick)."""
        deadline = time.perf_counter() + TICK_BUDGET_S
        while self._next < self.grid.count():
            self._load(self.grid.item(self._next))
            self._next += 1
            if time.perf_counter() >= deadline:
                break
        if self._next >= self.grid.count():
            self._timer.stop()

    def _load(self, item: QListWidgetItem) -> None:
        rel = str(item.data(PATH_ROLE))
        reader = QImageReader(str(self._root / rel))
        reader.setAutoTransform(True)  # EXIF orientation, as the training loader applies it
        size = reader.size()
        if size.isValid() and size.width() > 0 and size.height() > 0:
            reader.setScaledSize(size.scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio)
                                 .expandedTo(QSize(1, 1)))
        image = reader.read()
        if image.isNull():
            item.setToolTip(f"{rel}\ncould not be read for a thumbnail: {reader.errorString()}")
            pix = QPixmap(ICON, ICON)
            pix.fill(QColor(WARNING_COLOUR))
            item.setIcon(QIcon(pix))
            return
        item.setIcon(QIcon(QPixmap.fromImage(image)))
        if size.isValid():
            if reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90:
                size.transpose()
            item.setToolTip(f"{rel}\n{size.width()} × {size.height()} px")

    def _show_group(self, item: QListWidgetItem) -> None:
        """Select a near-duplicate group's files in the grid (those given a thumbnail)."""
        paths = item.data(PATH_ROLE) or []
        self.grid.clearSelection()
        first = None
        for rel in paths:
            grid_item = self._items.get(rel)
            if grid_item is not None:
                grid_item.setSelected(True)
                first = first or grid_item
        if first is not None:
            self.tabs.setCurrentIndex(0)
            self.grid.scrollToItem(first)
