"""The Model manager dialog: every installed model, its card, and rename/delete/import/export.

A thin view over ``core.model_manager`` (where the rules live and are tested headless). Hashes
are computed lazily (the selected model, or all on "Check hashes"): cheap for the shipped
models, but a user may keep many large ones. Every question the dialog asks goes through a
replaceable attribute (``ask_text``, ``ask_item``, ``ask_open_file``, ``ask_save_file``,
``confirm``, ``inform``, ``warn``, ``trash``) so tests answer them without modal dialogs.
``modelsChanged`` tells the main window to refresh every panel's model picker.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFile, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.jobs import Cancelled
from core.model_manager import (
    FamilyRequired,
    ModelManagerError,
    TrashFailed,
    check_hash,
    delete_model,
    export_model,
    import_model,
    known_families,
    model_files,
    model_size,
    rename_model,
)
from core.weights import ModelInfo, list_models

log = logging.getLogger("easel.models")

# What Import offers: Easel's models and exports, and the users' own model files
# (core.thirdparty: upscalers, LaMa...), which are converted once.
IMPORT_FILTER = ("Models (*.safetensors *.pth *.pt *.ckpt *.bin *.zip);;"
                 "Easel models and exports (*.safetensors *.zip);;All files (*)")
COLUMNS = ("Name", "Family", "Source", "Size (MB)", "Hash")
NAME, FAMILY, SOURCE, SIZE, HASH = range(len(COLUMNS))
NOT_CHECKED = "not checked"
HASH_TIPS = {
    "ok": "The file's sha256 matches its model card.",
    "mismatch": "The file was modified or is damaged: its sha256 does not match its model "
                "card, so it will not load.",
    "missing": "The weights file is missing.",
    "unverified": "Nothing to check against: the model has no readable card, or was imported "
                  "without one.",
    NOT_CHECKED: "Select the model or press 'Check hashes'.",
}
BAD = ("mismatch", "missing")
CARD_FIRST = ("name", "family", "architecture", "sha256", "created", "recipe", "command",
              "data", "steps", "wall_time_s", "device", "notes")


def move_to_trash(path: Path) -> bool:
    """QFile.moveToTrash; False where the platform or the file's disk has no trash."""
    result = QFile.moveToTrash(str(path))
    return bool(result[0] if isinstance(result, tuple) else result)


def _lines(key: str, value: Any, indent: int = 0) -> list[str]:
    """``key: value``, nested objects as indented lines (metrics are often tables by name)."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        out = [f"{pad}{key}:"]
        for k, v in value.items():
            out += _lines(str(k), v, indent + 2)
        return out
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list | dict):
        text = json.dumps(value)
    else:
        text = str(value)
    return [f"{pad}{key}: {text}"]


def card_text(info: ModelInfo) -> str:
    """The card as ``key: value`` lines: identity first, then metrics, config and the rest."""
    lines = [f"file: {info.path}"]
    if info.card is None:
        lines.append(f"error: {info.error or 'no model card'}")
        return "\n".join(lines)
    d = info.card.to_dict()
    for key in CARD_FIRST:
        value = d.pop(key, None)
        if value not in (None, ""):
            lines += _lines(key, value)
    for section in ("metrics", "config"):
        values = d.pop(section, {}) or {}
        if values:
            lines += _lines(section, dict(sorted(values.items())))
    for key, value in d.items():
        lines += _lines(key, value)
    return "\n".join(lines)


class ModelManager(QDialog):
    """Lists every model; Rename/Delete act on user models only (shipped ones are read-only)."""

    modelsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(820, 520)
        # Replaceable so tests (and other front ends) can answer without modal dialogs.
        self.ask_text: Callable[[str, str, str], str | None] = self._ask_text
        self.ask_item: Callable[[str, str, list[str]], str | None] = self._ask_item
        self.ask_open_file: Callable[[str, str], str] = self._ask_open_file
        self.ask_folder: Callable[[str], str] = self._ask_folder
        self.ask_save_file: Callable[[str, str, str], str] = self._ask_save_file
        self.confirm: Callable[[str, str], bool] = self._confirm
        self.inform: Callable[[str, str], None] = self._inform
        self.warn: Callable[[str, str], None] = self._warn
        self.trash: Callable[[Path], bool] = move_to_trash
        self.models: list[ModelInfo] = []
        # (path, mtime_ns, size, card sha256) -> status, so a changed file is hashed again.
        self._hashes: dict[tuple[str, int, int, str], str] = {}

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.card = QPlainTextEdit(readOnly=True)
        self.card.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.card.setPlaceholderText("Select a model to see its card.")
        self.summary = QLabel()

        self.rename_button = QPushButton("Rename…", clicked=self.rename_selected)
        self.delete_button = QPushButton("Delete…", clicked=self.delete_selected)
        self.import_button = QPushButton("Import…", clicked=self.import_file)
        self.import_folder_button = QPushButton("Import folder…", clicked=self.import_folder)
        self.export_button = QPushButton("Export…", clicked=self.export_selected)
        self.check_button = QPushButton("Check hashes", clicked=self.check_all)
        self.close_button = QPushButton("Close", clicked=self.accept)
        self.rename_button.setToolTip("Rename one of your models (shipped ones are read-only)")
        self.delete_button.setToolTip("Move one of your models to the trash")
        self.import_button.setToolTip("Copy a .safetensors model (with its .json card) or an "
                                      "exported .zip into your models, or convert your own "
                                      "upscaler or LaMa file (.pth, .ckpt, .safetensors) once")
        self.import_folder_button.setToolTip("Use a Stable Diffusion model saved as a diffusers "
                                             "folder (model_index.json, unet/, vae/...) where "
                                             "it lies")
        self.export_button.setToolTip("Save the model, its card and directions as a .zip")
        self.check_button.setToolTip("Compare every file's sha256 with its model card")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.card)
        buttons = QHBoxLayout()
        for b in (self.rename_button, self.delete_button, self.import_button,
                  self.import_folder_button, self.export_button, self.check_button):
            b.setAutoDefault(False)  # Enter closes the dialog; it never renames or deletes
            buttons.addWidget(b)
        self.close_button.setDefault(True)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.summary)
        lay.addLayout(buttons)
        self.refresh()

    # ------------------------------------------------------------------ listing

    def refresh(self, select: Path | None = None) -> None:
        """Re-read the models; keep the selection (or select the model at ``select``)."""
        current = self.selected()
        target = select if select is not None else (current.path if current else None)
        self.models = list_models()
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.models))
        for row, info in enumerate(self.models):
            size = model_size(info)
            cells = (info.name, info.family, info.source,
                     f"{size / 1e6:.1f}" if info.path.is_file() else "missing", "")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == SIZE:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
            if info.error:
                self.table.item(row, NAME).setToolTip(info.error)
            self._show_hash(row, self._hashes.get(self._hash_key(info), NOT_CHECKED))
        self.table.clearSelection()
        self.table.blockSignals(False)
        rows = [r for r, m in enumerate(self.models) if m.path == target]
        if rows:
            self.table.selectRow(rows[0])
        self._selection_changed()

    def selected(self) -> ModelInfo | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.models[rows.pop()] if len(rows) == 1 and self.models else None

    def select_model(self, name: str, source: str | None = None) -> int:
        """Select the first row called ``name`` (from ``source``); its row, or -1."""
        for row, info in enumerate(self.models):
            if info.name == name and source in (None, info.source):
                self.table.selectRow(row)
                return row
        return -1

    def hash_status(self, row: int) -> str:
        return self.table.item(row, HASH).text()

    @staticmethod
    def _hash_key(info: ModelInfo) -> tuple[str, int, int, str]:
        try:
            st = info.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, -1)
        sha = info.card.sha256 if info.card else ""
        return (str(info.path), *stamp, sha)

    def _check(self, row: int) -> str:
        info = self.models[row]
        key = self._hash_key(info)
        status = self._hashes.get(key)
        if status is None:
            status = self._hashes[key] = check_hash(info)
        self._show_hash(row, status)
        return status

    def _show_hash(self, row: int, status: str) -> None:
        item = QTableWidgetItem(status)
        item.setToolTip(HASH_TIPS.get(status, ""))
        if status in BAD:
            item.setForeground(QBrush(QColor("#c62828")))
        self.table.setItem(row, HASH, item)

    def check_all(self) -> dict[str, int]:
        """Hash every model; returns (and shows) how many have each status."""
        counts: dict[str, int] = {}
        for row in range(len(self.models)):
            status = self._check(row)
            counts[status] = counts.get(status, 0) + 1
        self.summary.setText(", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                             or "No models installed.")
        return counts

    def _selection_changed(self) -> None:
        info = self.selected()
        user = info is not None and info.source == "user"
        self.rename_button.setEnabled(user)
        self.delete_button.setEnabled(user)
        self.export_button.setEnabled(info is not None)
        self.check_button.setEnabled(bool(self.models))
        if info is None:
            self.card.clear()
            return
        self.card.setPlainText(card_text(info))
        self._check(self.models.index(info))

    # ------------------------------------------------------------------ actions

    def _changed(self, select: Path | None = None) -> None:
        self.refresh(select)
        self.modelsChanged.emit()

    def _fail(self, title: str, exc: Exception) -> None:
        if not isinstance(exc, ModelManagerError | OSError):
            log.exception("%s failed", title)
        self.warn(title, str(exc) or type(exc).__name__)

    def rename_selected(self) -> None:
        info = self.selected()
        if info is None or info.source != "user":
            return
        name = self.ask_text("Rename model", f"New name for the {info.family} model "
                             f"{info.name!r}:", info.name)
        if not name or name.strip() == info.name:
            return
        try:
            path = rename_model(info, name)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self._fail("Rename failed", exc)
            return
        self._changed(path)

    def delete_selected(self) -> None:
        info = self.selected()
        if info is None or info.source != "user":
            return
        if not self.confirm("Delete model", f"Move the {info.family} model {info.name!r} "
                            "to the trash?"):
            return
        before = model_files(info)
        try:
            delete_model(info, trash=self.trash)
        except TrashFailed as exc:
            if not self.confirm("Delete model", f"{exc}\n\nDelete {info.name!r} for good? "
                                "This cannot be undone."):
                if model_files(info) != before:  # some files went to the trash already
                    self._changed()
                return
            try:
                delete_model(info)
            except Exception as exc2:  # noqa: BLE001
                self._fail("Delete failed", exc2)
                self._changed()
                return
        except Exception as exc:  # noqa: BLE001
            self._fail("Delete failed", exc)
            return
        self._changed()

    def import_file(self) -> None:
        path = self.ask_open_file("Import a model", IMPORT_FILTER)
        if path:
            self._import_and_say(path)

    def import_folder(self) -> None:
        path = self.ask_folder("Import a Stable Diffusion folder")
        if path:
            self._import_and_say(path)

    def _import_and_say(self, path: str) -> None:
        """Import ``path`` (asking the family of a file that needs one) and say how it went."""
        try:
            try:
                info = self._import(path)
            except FamilyRequired:
                family = self.ask_item("Import a model", f"{Path(path).name} has no model "
                                       "card. Which kind of model is it?", known_families())
                if not family:
                    return
                info = self._import(path, family=family)
        except Cancelled:
            self.inform("Import cancelled", f"{Path(path).name} was not imported.")
            return
        except Exception as exc:  # noqa: BLE001
            self._fail("Import failed", exc)
            return
        self._changed(info.path)
        text = f"Imported as {info.name} ({info.family})."
        if info.card is not None and info.card.extra.get("unverified"):
            text += (" It came without a model card, so it is listed as unverified and uses "
                     "default architecture settings.")
        self.inform("Model imported", text)

    def _import(self, path: str, **kw: Any) -> ModelInfo:
        """``import_model(path, **kw)`` on a worker thread, behind a progress dialog whose
        Cancel stops it (nothing is written then: Cancelled); the import's own error is raised
        here."""
        name = Path(path).name
        progress = QProgressDialog(f"Importing {name}…", "Cancel", 0, 0, self)
        progress.setWindowTitle("Import a model")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)  # quick imports never show it
        self.import_progress = progress  # tests reach its Cancel button
        cancel = threading.Event()
        state: dict[str, Any] = {"done": 0, "size": 0}

        def report(done: int, size: int) -> None:  # on the worker thread
            if cancel.is_set():
                raise Cancelled
            state.update(done=done, size=size)

        def work() -> None:
            try:
                state["info"] = import_model(path, progress=report, **kw)
            except BaseException as exc:  # noqa: BLE001 - raised again on the GUI thread
                state["error"] = exc

        worker = threading.Thread(target=work, name="easel-import", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.03)
            if progress.wasCanceled():
                cancel.set()
            if state["size"]:
                progress.setRange(0, 1000)
                progress.setValue(min(999, state["done"] * 1000 // state["size"]))
                progress.setLabelText(f"Importing {name}: {state['done'] / 2**20:,.0f} of "
                                      f"{state['size'] / 2**20:,.0f} MB read…")
            QApplication.processEvents()
        progress.reset()
        progress.deleteLater()
        if "error" in state:
            raise state["error"]
        return state["info"]

    def export_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        path = self.ask_save_file("Export model", str(Path.home() / f"{info.name}.zip"),
                                  "Zip archives (*.zip)")
        if not path:
            return
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".zip")
        try:
            out = export_model(info, target)
        except Exception as exc:  # noqa: BLE001
            self._fail("Export failed", exc)
            return
        self.inform("Model exported", f"Saved {info.name} to {out}.")

    # ------------------------------------------------------------------ real dialogs

    def _ask_text(self, title: str, label: str, text: str) -> str | None:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def _ask_item(self, title: str, label: str, items: list[str]) -> str | None:
        value, ok = QInputDialog.getItem(self, title, label, items, 0, False)
        return value if ok else None

    def _ask_open_file(self, title: str, filters: str) -> str:
        return QFileDialog.getOpenFileName(self, title, str(Path.home()), filters)[0]

    def _ask_folder(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self, title, str(Path.home()))

    def _ask_save_file(self, title: str, default: str, filters: str) -> str:
        return QFileDialog.getSaveFileName(self, title, default, filters)[0]

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _inform(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)

    def _warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)
