"""What a dropped training folder holds: the Train panel's dataset view.

It shows the report of ``easel dataset FOLDER --json`` (``FolderReport.to_dict()``): a summary
line, a grid of thumbnails, the files set aside and why, and the near-duplicate groups. The
report is made elsewhere (the scan decodes every image, which is far too slow for the GUI
thread); this widget only reads thumbnails, a batch at a time off the GUI thread
(desktop.background), each through a QImageReader told to decode at thumbnail size (JPEG
decodes at 1/8 scale directly); the GUI thread only turns each 64 px image into an icon, so a
folder of thousands of photos never holds the event loop, even on a busy machine. Only the
first ``MAX_THUMBNAILS`` files get a thumbnail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QImageIOHandler, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.background import BackgroundReader

ICON = 64  # thumbnail size, px
MAX_THUMBNAILS = 200  # a grid of more would take long to fill and says little more
BATCH = 8  # thumbnails read per background task (each batch lands in the grid at once)
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

        self._reader = BackgroundReader(self)
        self._loading = False
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
            self._loading = True
            self._read_batch()

    def clear(self) -> None:
        """Show nothing and stop reading thumbnails."""
        self._reader.forget()
        self._loading = False
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
        return self._loading

    def shutdown(self) -> None:
        """The app is closing: let the thumbnail read in flight end (its result is dropped)."""
        self.clear()
        self._reader.wait()

    # -- internals ----------------------------------------------------------------------------

    def _update_summary(self) -> None:
        if not self._report:
            self.summary.setText("Drop a folder of images to see what it holds")
            self.summary.setStyleSheet("")
            return
        text, short = summary_text(self._report, self._minimum)
        self.summary.setText(text)
        self.summary.setStyleSheet(f"color: {WARNING_COLOUR};" if short else "")

    def _read_batch(self) -> None:
        """Read the next batch of thumbnails off the GUI thread; show them when they arrive."""
        start = self._next
        rels = [str(self.grid.item(i).data(PATH_ROLE))
                for i in range(start, min(start + BATCH, self.grid.count()))]
        root = self._root
        self._reader.read(lambda: [read_thumbnail(root / rel) for rel in rels],
                          lambda read: self._show_batch(start, rels, read))

    def _show_batch(self, start: int, rels: list[str], read: list[Thumbnail]) -> None:
        for k, (rel, (image, size, error)) in enumerate(zip(rels, read, strict=True)):
            item = self.grid.item(start + k)
            if image is None:
                item.setToolTip(f"{rel}\ncould not be read for a thumbnail: {error}")
                pix = QPixmap(ICON, ICON)
                pix.fill(QColor(WARNING_COLOUR))
                item.setIcon(QIcon(pix))
                continue
            item.setIcon(QIcon(QPixmap.fromImage(image)))
            if size is not None:
                item.setToolTip(f"{rel}\n{size[0]} × {size[1]} px")
        self._next = start + len(rels)
        if self._next < self.grid.count():
            self._read_batch()
        else:
            self._loading = False

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


Thumbnail = tuple[QImage | None, tuple[int, int] | None, str]  # image, (w, h) upright, error


def read_thumbnail(path: Path) -> Thumbnail:
    """A file's thumbnail (at most ICON px, EXIF orientation applied, as the training loader
    applies it), decoded at that size where the format allows. Safe off the GUI thread: a
    QImage, never a QPixmap."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and size.width() > 0 and size.height() > 0:
        reader.setScaledSize(size.scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio)
                             .expandedTo(QSize(1, 1)))
    image = reader.read()
    if image.isNull():
        return None, None, reader.errorString()
    if not size.isValid():
        return image, None, ""
    if reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90:
        size.transpose()
    return image, (size.width(), size.height()), ""
