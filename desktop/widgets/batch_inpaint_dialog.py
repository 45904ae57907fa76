"""File > Batch inpaint…: fill every picture of a folder with its mask and write the results to
another folder, with the Inpaint panel's engine and settings.

The pictures are paired with their masks by core/specs/inpaint_batch.py (a mask folder with a
mask per picture, by name, or one mask file for all, resized to each); each picture is one job
of the inference service (core/pipelines/inpaint_batch.py, the pipeline ``easel inpaint
FOLDER`` runs too), submitted when the one before it ends, so the bar follows each fill and
Cancel stops the one running: results are written whole or not at all. The list below says
what became of each picture, and why one was refused or failed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.imageio import IMAGE_FILE_FILTER
from core.jobs import JobError, JobSpec
from core.specs.inpaint_batch import (
    WRITTEN,
    BatchItem,
    BatchPlan,
    FileOutcome,
    plan_batch,
    summary_line,
)
from desktop.inference import JobHandle

log = logging.getLogger("easel.batch")

STEPS = 1000  # progress bar units per picture
STATUS_TEXT = {"written": "Written", "refused": "Refused", "failed": "Failed"}


class BatchInpaintDialog(QDialog):
    """Runs a batch with ``submit`` (a job spec -> its handle, or None once the app closes),
    the fill settings ``settings()`` gives at the start (JobError when they cannot run) and
    ``describe()`` puts in words; ``store`` remembers the folders between sessions."""

    batchEnded = Signal(list)  # the FileOutcomes, once the batch ended (done or cancelled)

    def __init__(self, submit: Callable[[JobSpec], JobHandle | None],
                 settings: Callable[[], dict[str, Any]], describe: Callable[[], str],
                 store: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch inpaint")
        self._submit, self._settings, self._describe, self._store = (
            submit, settings, describe, store)
        self.plan: BatchPlan | None = None
        self.outcomes: list[FileOutcome] = []
        self.job: JobHandle | None = None
        self._fill: dict[str, Any] = {}
        self._overwrite = False
        self._index = 0  # the picture being filled
        self._submitted_at = 0.0
        self._cancelling = False
        self.cancelled_item: BatchItem | None = None  # the picture a cancel stopped

        self.folder = self._path_edit("The folder of pictures to fill (its sub-folders are "
                                      "left out)")
        self.mask = self._path_edit("A folder of masks named like the pictures (photo.jpg: "
                                    "photo.png, any image type), or one mask for every "
                                    "picture. White is filled.")
        self.output = self._path_edit("Where the results go, as NAME.png: not the picture "
                                      "folder")
        self.overwrite = QCheckBox("Replace results that already exist in the output folder")
        self.settings_label = QLabel()
        self.settings_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("Choose the folders, then press Inpaint all.")
        self.status.setWordWrap(True)
        self.summary = QTreeWidget()
        self.summary.setHeaderLabels(["Picture", "Result", "Details"])
        self.summary.setRootIsDecorated(False)
        self.summary.setWordWrap(True)
        header = self.summary.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)

        self.start_button = QPushButton("Inpaint all")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after nothing more than the picture being filled: "
                                      "it is not written, the ones before it are kept")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)

        form = QFormLayout()
        form.addRow("Pictures", self._row(self.folder, ("Folder…", self._pick_folder)))
        form.addRow("Masks", self._row(self.mask, ("Mask file…", self._pick_mask_file),
                                       ("Mask folder…", self._pick_mask_folder)))
        form.addRow("Output", self._row(self.output, ("Folder…", self._pick_output)))
        form.addRow("Settings", self.settings_label)
        form.addRow("", self.overwrite)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.summary, 1)
        lay.addWidget(self.summary_label)
        lay.addLayout(buttons)
        self._load()
        self.resize(720, 480)

    # ---------------------------------------------------------------- building

    def _path_edit(self, tip: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setToolTip(tip)
        edit.setMinimumWidth(320)
        return edit

    def _row(self, edit: QLineEdit, *buttons: tuple[str, Callable[[], None]]) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        for text, slot in buttons:
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        return row

    def _pick_folder(self) -> None:
        self._pick_dir(self.folder, "Folder of pictures")

    def _pick_mask_folder(self) -> None:
        self._pick_dir(self.mask, "Folder of masks")

    def _pick_output(self) -> None:
        self._pick_dir(self.output, "Output folder")

    def _pick_dir(self, edit: QLineEdit, title: str) -> None:
        path = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
        if path:
            edit.setText(path)

    def _pick_mask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mask for every picture",
                                              self.mask.text() or str(Path.home()),
                                              IMAGE_FILE_FILTER)
        if path:
            self.mask.setText(path)

    def showEvent(self, event: QShowEvent) -> None:
        self.refresh_settings()
        super().showEvent(event)

    def refresh_settings(self) -> None:
        """Say which engine and settings a batch would use now (the Inpaint panel's)."""
        self.settings_label.setText(f"{self._describe()}. Change them in the Inpaint panel.")

    # ---------------------------------------------------------------- running

    def is_running(self) -> bool:
        return self.plan is not None and self.job is not None

    def start(self) -> bool:
        """Plan the batch and submit its first picture; False (and the reason shown) when it
        cannot start."""
        if self.is_running():
            return False
        try:
            plan = plan_batch(self.folder.text().strip(), self.mask.text().strip(),
                              self.output.text().strip())
            self._fill = self._settings()
            plan.make_output_folder()
        except JobError as exc:
            self._say(str(exc), error=True)
            return False
        self.refresh_settings()  # the seed the batch uses, when a new one was drawn
        self._save()
        self.plan, self.outcomes, self._index = plan, [], 0
        self._overwrite = self.overwrite.isChecked()
        self._cancelling, self.cancelled_item = False, None
        self.summary.clear()
        self.summary_label.clear()
        self.progress.setRange(0, STEPS * len(plan.items))
        self.progress.setValue(0)
        self._set_running(True)
        self._next()
        return True

    def cancel(self) -> None:
        """Stop the batch: the picture being filled is not written; those before it stay."""
        if self.job is None or self._cancelling:
            return
        self._cancelling = True
        self.cancel_button.setEnabled(False)
        self._say("Cancelling…")
        self.job.cancel()

    def _next(self) -> None:
        plan = self.plan
        assert plan is not None
        while self._index < len(plan.items):
            item = plan.items[self._index]
            if item.problem:
                self._record(FileOutcome.refused(item, item.problem))
                continue
            spec = plan.spec(item, self._fill, self._overwrite)
            job = self._submit(spec)
            if job is None:  # the app is closing
                break
            self.job = job
            self._submitted_at = time.time()
            job.progress.connect(self._on_progress)
            job.finished.connect(lambda result, i=item: self._on_finished(i, result))
            job.failed.connect(lambda message, details, i=item: self._on_failed(
                i, message, details))
            job.cancelled.connect(lambda i=item: self._on_cancelled(i))
            self._say(f"Filling {self._index + 1} of {len(plan.items)}: {item.picture.name}")
            return
        self._end()

    def _on_progress(self, step: int, total: int, message: str) -> None:
        part = step / total if total > 0 else 0.0
        self.progress.setValue(STEPS * self._index + round(STEPS * min(part, 1.0)))

    def _on_finished(self, item: BatchItem, result: Any) -> None:
        self.job = None
        self._record(FileOutcome.of_result(item, result))
        self._next()

    def _on_failed(self, item: BatchItem, message: str, details: str) -> None:
        self.job = None
        log.warning("Batch inpaint of %s failed: %s\n%s", item.picture, message, details)
        self._record(FileOutcome.failed(item, message))
        self._next()

    def _on_cancelled(self, item: BatchItem) -> None:
        self.job = None
        if _written_since(item.output, self._submitted_at):
            # It was written just before the cancel reached it: a whole file, kept.
            self._record(FileOutcome(str(item.picture), WRITTEN, str(item.output)))
        else:
            self.cancelled_item = item
        self._end()

    def _record(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)
        self._index += 1
        self.progress.setValue(STEPS * self._index)
        name = Path(outcome.picture).name
        details = (f"→ {Path(outcome.output).name}" if outcome.status == WRITTEN
                   else outcome.message)
        details = " ".join([details, *outcome.notes])
        row = QTreeWidgetItem([name, STATUS_TEXT.get(outcome.status, outcome.status), details])
        row.setToolTip(2, details)
        self.summary.addTopLevelItem(row)
        self.summary.scrollToItem(row)

    def _end(self) -> None:
        plan = self.plan
        assert plan is not None
        self.job = None
        self._set_running(False)
        text = summary_line(self.outcomes, len(plan.items))
        if self.cancelled_item is not None:
            text += (f". Cancelled while filling {self.cancelled_item.picture.name}: it was "
                     "not written")
        problems = [o for o in self.outcomes if o.status != WRITTEN]
        if problems:
            text += ". Refused and failed pictures are listed above with the reason"
        self.summary_label.setText(f"{text}. Results are in {plan.output}.")
        # The seed, for "a new seed each run": each result's PNG records it as well.
        seed = f" (seed {self._fill['seed']})" if "seed" in self._fill else ""
        self._say(f"Cancelled{seed}." if self.cancelled_item is not None else f"Done{seed}.")
        self.batchEnded.emit(list(self.outcomes))

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.folder, self.mask, self.output, self.overwrite):
            w.setEnabled(not running)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel()  # closing stops a running batch; what was written stays
        self._save()
        super().closeEvent(event)

    def reject(self) -> None:  # Esc
        self.cancel()
        super().reject()

    # ---------------------------------------------------------------- settings

    def _load(self) -> None:
        if self._store is None:
            return
        for key, edit in (("folder", self.folder), ("mask", self.mask),
                          ("output", self.output)):
            edit.setText(str(self._store.value(f"batch_inpaint/{key}", "") or ""))
        self.overwrite.setChecked(
            str(self._store.value("batch_inpaint/overwrite", "false")).lower() == "true")

    def _save(self) -> None:
        if self._store is None:
            return
        for key, edit in (("folder", self.folder), ("mask", self.mask),
                          ("output", self.output)):
            self._store.setValue(f"batch_inpaint/{key}", edit.text().strip())
        self._store.setValue("batch_inpaint/overwrite", self.overwrite.isChecked())


def _written_since(path: Path, since: float) -> bool:
    try:
        return os.stat(path).st_mtime >= since - 1.0
    except OSError:
        return False
