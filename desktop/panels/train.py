"""The Train panel: drop a folder in, train a model on your own pictures, use it everywhere.

The dataset view comes from ``easel dataset FOLDER --json`` and the training from ``easel
train ... --progress jsonl``, each run as a QProcess, so the app never waits on either and a
crash or out-of-memory in training never takes it down. A training process is started
detached, writing its events and its log into its run folder (core.training.runs): the panel
follows a run by reading those files, so a run left going when the app closes is found again
(running, paused, finished or killed) in the next session and can be resumed from its last
checkpoint. Pause and Stop are requests in the run folder's ``control`` file.

Finished models go to the user models folder; ``modelsChanged`` then lets the window refresh
every panel's model picker, and "Use in Latent panel" selects a new VAE or DCGAN there.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QIODevice, QProcess, QProcessEnvironment, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.jobs import JobError
from core.model_manager import free_name, name_taken
from core.training import runs
from core.training.runs import FAMILIES, EventReader, RunError, RunState, TrainRequest
from desktop.canvas import dropped
from desktop.panels import fields
from desktop.panels.base import Panel, message_label
from desktop.panels.fields import Field
from desktop.widgets.dataset_view import DatasetView
from desktop.widgets.loss_plot import LossPlot

POLL_MS = 300  # how often a followed run's files are read
LATENT_FAMILIES = ("vae", "dcgan")  # what the Latent panel opens
LOW_DISK_BYTES = 200 * 1024 * 1024
ACTIVE = ("new", "running", "evaluating")  # a process works on the run
STATE_WORDS = {"new": "starting", "running": "training", "evaluating": "measuring the model",
               "paused": "paused", "finished": "finished", "failed": "failed",
               "killed": "stopped unexpectedly"}
# The form: widget, run request field, settings key, range, default (desktop/panels/fields.py).
# The family comes first: it lists the sizes. The budget is the request's steps or minutes, as
# its unit says; the folder is what the panel reads (and remembers) beside the form.
FIELDS = (
    Field("family", "family", default="vae"),
    Field("picture_size", "size", "size", default=64),
    Field("budget", None, "budget", range=(0.5, 100000), default=10.0, decimals=1),
    Field("budget_unit", None, "budget_unit", default="minutes"),
    Field("device", "device", default="auto"),
    Field("name_edit", "name", None, default=""),
    Field("style_edit", "style", None, default=""),
    Field("judge", "judge", default=""),
)


def easel_process(arguments: list[str], threads: int | None = None) -> QProcess:
    """A QProcess for ``easel ARGUMENTS`` with this interpreter (or the frozen app)."""
    program = runs.program()
    proc = QProcess()
    proc.setProgram(program[0])
    proc.setArguments([*program[1:], *arguments])
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    if threads:
        env.insert("OMP_NUM_THREADS", str(threads))
    proc.setProcessEnvironment(env)
    return proc


def cpu_threads() -> int:
    """Training threads on the CPU: all cores but one, so the app stays responsive."""
    return max(1, (os.cpu_count() or 2) - 1)


class TrainPanel(Panel):
    name = "train"
    title = "Train"
    modelsChanged = Signal()  # a model was added (or changed): pickers should list again
    useModel = Signal(str, str)  # family, name: open it in the panel that uses it
    runningChanged = Signal(bool)
    FIELDS = FIELDS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.folder = ""
        self.report: dict[str, Any] | None = None
        self._scan: QProcess | None = None
        self.out: Path | None = None  # the run followed
        self.state: RunState | None = None
        self._reader: EventReader | None = None
        self._rows: list[dict[str, Any]] = []
        self._speed = (0.0, 0.0)  # images/s and seconds left, from the last step event
        self._batch = 0
        self._started_at = 0.0
        self._last_sample = ""
        self.ask_folder = lambda: QFileDialog.getExistingDirectory(self, "Folder of pictures")
        self.ask_style = lambda: QFileDialog.getOpenFileName(
            self, "The painting to learn", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif "
            "*.tiff)")[0]

        # ---- data
        self.folder_edit = QLineEdit()
        self.folder_edit.setReadOnly(True)
        self.folder_edit.setPlaceholderText("Drop a folder of pictures here")
        choose = QPushButton("Choose…")
        choose.setToolTip("The folder of pictures to train on (sub-folders included)")
        choose.clicked.connect(self.choose_folder)
        self.dataset = DatasetView()
        self.scan_label = QLabel()

        # ---- settings
        fields.build(self, FIELDS)
        self.family = QComboBox()
        for key, (text, _, _) in FAMILIES.items():
            self.family.addItem(text, key)
        self.family.setToolTip("VAE: smooth latent space for the Latent panel; DCGAN: sharper "
                               "samples; VQ-VAE: codes; diffusion: the Inpaint panel's fills; "
                               "fast style: one painting's look in one pass")
        self.family.currentIndexChanged.connect(self._family_changed)
        self.picture_size = QComboBox()
        self.picture_size.setToolTip("The picture size the model learns at: larger is slower")
        self.budget_unit = QComboBox()
        self.budget_unit.addItem("minutes", "minutes")
        self.budget_unit.addItem("steps", "steps")
        self.budget_unit.setToolTip("Train for a time (the model is saved when it is up) or "
                                    "a number of steps")
        self.device = QComboBox()
        self.device.addItem("Automatic", "auto")
        self.device.setToolTip("Where the training runs (a GPU when there is one)")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("The new model's name, as the model pickers show it")
        self.style_edit = QLineEdit()
        self.style_edit.setReadOnly(True)
        self.style_edit.setPlaceholderText("the painting to learn")
        self.style_button = QPushButton("Choose…")
        self.style_button.clicked.connect(self.choose_style)
        self.judge = QComboBox()
        self.judge.addItem("none", "")
        self.judge.addItem("faces judge", "faces")
        self.judge.addItem("scenes judge", "scenes")
        self.judge.setToolTip("For pictures like one of Easel's worlds: that world's judge "
                              "measures the samples (FJD) in the model card")

        # ---- run controls and view
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip("Train a new model on the folder (Ctrl+Return)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Save a checkpoint and stop; Resume continues from it")
        self.pause_button.clicked.connect(self.pause)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop now and save the model as it is")
        self.stop_button.clicked.connect(self.stop)
        self.use_button = QPushButton("Use in Latent panel")
        self.use_button.clicked.connect(self._use_model)
        self.models_button = QPushButton("Models…")
        self.models_button.setToolTip("Shipped and your models: rename, delete, import, export")
        self.models_button.clicked.connect(self.manage_models)
        self.runs = QComboBox()
        self.runs.setToolTip("Earlier runs: pick one to see it, resume it if it was paused")
        self.runs.activated.connect(self._run_picked)
        self.status = QLabel("No training run yet.")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        self.plot.setMinimumHeight(200)
        self.dataset.setMinimumHeight(220)
        self.sample = QLabel()
        self.sample.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample.setToolTip("The latest samples the model draws")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumHeight(110)
        self.log_view.setVisible(False)
        self.message = message_label()

        self._layout(choose)
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._follow)
        self._family_changed()
        self.refresh_runs()
        self._update_buttons()

    def _layout(self, choose: QPushButton) -> None:
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(choose)
        data_box = QGroupBox("Pictures")
        data_lay = QVBoxLayout(data_box)
        data_lay.addLayout(folder_row)
        data_lay.addWidget(self.scan_label)
        data_lay.addWidget(self.dataset, 1)

        budget_row = QHBoxLayout()
        budget_row.addWidget(self.budget, 1)
        budget_row.addWidget(self.budget_unit)
        style_row = QHBoxLayout()
        style_row.addWidget(self.style_edit, 1)
        style_row.addWidget(self.style_button)
        self.style_row = QWidget()
        self.style_row.setLayout(style_row)
        style_row.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        form.addRow("Model", self.family)
        form.addRow("Size", self.picture_size)
        form.addRow("Budget", budget_row)
        form.addRow("Painting", self.style_row)
        self.form = form
        form.addRow("Device", self.device)
        form.addRow("Name", self.name_edit)
        form.addRow("Measure with", self.judge)
        settings_box = QGroupBox("Model")
        settings_box.setLayout(form)

        buttons = QGridLayout()  # two by two: the panel stays narrow beside the canvas
        for i, b in enumerate((self.start_button, self.pause_button, self.resume_button,
                               self.stop_button)):
            buttons.addWidget(b, i // 2, i % 2)
        runs_row = QHBoxLayout()
        runs_row.addWidget(QLabel("Run"))
        runs_row.addWidget(self.runs, 1)
        runs_row.addWidget(self.models_button)
        run_box = QGroupBox("Training")
        run_lay = QVBoxLayout(run_box)
        run_lay.addLayout(runs_row)
        run_lay.addLayout(buttons)
        run_lay.addWidget(self.status)
        run_lay.addWidget(self.plot, 1)
        run_lay.addWidget(self.sample)
        run_lay.addWidget(self.use_button)
        run_lay.addWidget(self.log_view)

        content = QWidget()
        lay = QVBoxLayout(content)
        lay.addWidget(data_box)
        lay.addWidget(settings_box)
        lay.addWidget(run_box)
        lay.addWidget(self.message)
        lay.addStretch(1)
        self.scroll = QScrollArea()  # a narrow dock scrolls rather than squeezing the plot
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

    # ---------------------------------------------------------------- the folder

    def choose_folder(self) -> None:
        folder = self.ask_folder()
        if folder:
            self.set_folder(folder)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files, _ = dropped(event.mimeData())
        if files:
            self.set_folder(files[0])
            event.acceptProposedAction()

    def set_folder(self, folder: str) -> None:
        """Show what ``folder`` holds as a training set (read by ``easel dataset``)."""
        folder = str(Path(folder).expanduser().resolve())
        if not Path(folder).is_dir():
            self.show_message(f"{folder} is not a folder.")
            return
        self.folder = folder
        self.folder_edit.setText(folder)
        self.name_edit.setText(free_name(self._family(), runs.default_name(self._family(), folder)))
        self.report = None
        self.dataset.clear()
        self.show_message("")
        self._stop_scan()
        self.scan_label.setText("Reading the pictures…")
        proc = easel_process(["dataset", folder, "--json"])
        proc.finished.connect(lambda code, _s, p=proc: self._scan_done(p, code))
        self._scan = proc
        proc.start()
        self._update_buttons()

    def _scan_done(self, proc: QProcess, code: int) -> None:
        if proc is not self._scan:
            return
        self._scan = None
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace").strip()
        proc.deleteLater()
        try:
            report = json.loads(out) if code == 0 else None
        except ValueError:
            report = None
        if not isinstance(report, dict):
            self.scan_label.setText("")
            self.show_message(f"Cannot read {self.folder}: {err.splitlines()[-1] if err else ''}")
            return
        self.report = report
        self.dataset.set_minimum(self._minimum())
        self.dataset.set_report(report)
        self.scan_label.setText("")
        self._update_buttons()

    def _stop_scan(self) -> None:
        if self._scan is not None:
            proc, self._scan = self._scan, None
            proc.kill()
            proc.waitForFinished(2000)
            proc.deleteLater()

    # ---------------------------------------------------------------- settings

    def _family(self) -> str:
        return str(self.family.currentData())

    def _minimum(self) -> int:
        return runs.min_images(self._family())

    def _family_changed(self) -> None:
        family = self._family()
        current = self.picture_size.currentData()
        self.picture_size.clear()
        for px in FAMILIES[family][2]:
            self.picture_size.addItem(f"{px} px", px)
        found = self.picture_size.findData(current if current else 64)
        self.picture_size.setCurrentIndex(max(0, found))
        self.form.setRowVisible(self.style_row, family == "style_fast")
        self.judge.setEnabled(family != "style_fast")
        if self.folder:
            self.name_edit.setText(free_name(family, runs.default_name(family, self.folder)))
        if self.report is not None:
            self.dataset.set_minimum(self._minimum())
        self._update_buttons()

    def set_devices(self, devices: list[str]) -> None:
        """The devices the window found (core.device.available_devices)."""
        current = self.device.currentData()
        self.device.clear()
        self.device.addItem("Automatic", "auto")
        for d in devices:
            self.device.addItem(d.upper() if d == "cpu" else d, d)
        self.device.setCurrentIndex(max(0, self.device.findData(current)))

    def choose_style(self) -> None:
        path = self.ask_style()
        if path:
            self.style_edit.setText(path)
            self._update_buttons()

    def build_request(self) -> TrainRequest:
        """The run the settings describe; JobError with a readable text when it cannot run."""
        if not self.folder:
            raise JobError("Choose or drop a folder of pictures first.")
        if self.report is None:
            raise JobError("The folder is still being read.")
        count, minimum = int(self.report.get("count", 0)), self._minimum()
        if count < minimum:
            raise JobError(f"{self.folder} has {count} usable picture"
                           f"{'s' if count != 1 else ''}; training needs at least {minimum}.")
        values = fields.spec_values(self, FIELDS)
        values.update(size=int(values["size"]), device=str(values["device"]),
                      name=values["name"].strip(), style=values["style"].strip(),
                      judge=values["judge"] or None)
        minutes = self.budget_unit.currentData() == "minutes"
        budget = self.budget.value()
        req = TrainRequest(**values, folder=self.folder, minutes=budget if minutes else 0.0,
                           steps=0 if minutes else max(1, round(budget)))
        try:
            req.check()
        except RunError as exc:
            raise JobError(str(exc)) from None
        if name_taken(req.family, req.name):  # the finished run would replace that model
            raise JobError(f"A {FAMILIES[req.family][0]} called {req.name!r} is installed; "
                           "choose another name.")
        return req

    # ---------------------------------------------------------------- runs

    def run_in_panel(self) -> bool:
        self.start()
        return True

    def start(self) -> None:
        if self.is_running():
            self.show_message("A training run is going; pause or stop it first.")
            return
        try:
            req = self.build_request()
            free = runs.free_bytes(runs.runs_dir().parent)
            if free and free < LOW_DISK_BYTES:
                raise JobError(f"Only {free // 2 ** 20} MB are free on the disk holding "
                               f"{runs.runs_dir()}; a run needs room for its checkpoints.")
            out, arguments = runs.new_run(req)
        except (JobError, RunError, OSError) as exc:
            self.show_message(str(exc))
            return
        self._launch(out, arguments, req.device)
        self.refresh_runs()

    def resume(self) -> None:
        if self.out is None or self.is_running():
            return
        try:
            arguments = runs.resume_arguments(self.out)
        except RunError as exc:
            self.show_message(str(exc))
            return
        device = str((self.state.request if self.state else {}).get("device", "auto"))
        self._launch(self.out, arguments, device, resumed=True)

    def _launch(self, out: Path, arguments: list[str], device: str, resumed: bool = False
                ) -> None:
        proc = easel_process(arguments, cpu_threads() if device in ("cpu", "auto") else None)
        append = QIODevice.OpenModeFlag.Append
        proc.setStandardOutputFile(str(out / runs.EVENTS), append)
        proc.setStandardErrorFile(str(out / runs.LOG), append)
        proc.setWorkingDirectory(str(out))
        (out / runs.PID).unlink(missing_ok=True)  # the new process writes its own
        if not proc.startDetached():
            self.show_message(f"Could not start {proc.program()}: {proc.errorString()}")
            return
        self.show_message("")
        self.follow(out, fresh=not resumed)
        self.state.state = "new"  # until the process speaks
        QTimer.singleShot(50, self._show_run_view)
        self._started_at = time.monotonic()
        self._update_view()

    def pause(self) -> None:
        self._request(runs.PAUSE, "Pausing: saving a checkpoint…")

    def stop(self) -> None:
        self._request(runs.FINISH, "Stopping: saving the model as it is…")

    def _request(self, what: str, text: str) -> None:
        if self.out is None or not self.is_running():
            return
        try:
            runs.request(self.out, what)
        except OSError as exc:
            self.show_message(f"Could not ask the run to {what}: {exc}")
            return
        self.status.setText(text)

    def is_running(self) -> bool:
        return self.state is not None and self.state.state in ACTIVE

    def follow(self, out: Path, fresh: bool = False) -> None:
        """Show the run in ``out`` and keep reading it while it goes."""
        self.out = out
        self.state = RunState(out, "new", dict(runs.read_launch(out).get("request") or {}))
        self._reader = EventReader(out)
        self._rows, self._batch, self._last_sample, self._speed = [], 0, "", (0.0, 0.0)
        self.plot.clear()
        self.sample.clear()
        self.log_view.setVisible(False)
        self._follow(replay=True)  # everything the run said so far
        if not fresh:  # and whether its process still lives
            live = runs.run_state(out)
            self.state.state, self.state.message, self.state.pid = (live.state, live.message,
                                                                    live.pid)
        self._poll.start()
        self._update_view()

    def _follow(self, replay: bool = False) -> None:
        if self.out is None or self._reader is None or self.state is None:
            return
        events = self._reader.read()
        before = self.state.state
        added: list[dict[str, Any]] = []
        for event in events:
            runs.fold(self.state, event)
            kind = event.get("event")
            if kind == "start":
                self._batch = int(event.get("batch_size", 0))
                k = int(event.get("step", 0))
                self._rows = [r for r in self._rows if r["step"] <= k]
                added = []
                self.plot.set_rows(self._rows)
            elif kind == "step":
                row = {"step": int(event["step"]), **(event.get("losses") or {})}
                self._rows.append(row)
                added.append(row)
                self._speed = (float(event.get("images_per_s") or 0.0),
                               float(event.get("eta_s") or 0.0))
            elif kind == "sample":
                self._last_sample = str(event.get("path", ""))
        for row in added:
            self.plot.add(row["step"], {k: v for k, v in row.items() if k != "step"})
        if self._last_sample:
            self._show_sample(self._last_sample)
        if not replay:
            if self.state.state in ACTIVE:
                self._check_alive()
            elif not runs.pid_alive(runs.read_pid(self.out)):
                # The process has said its last word (an evaluation follows a finished run's
                # "done" in the same process; a failure's message reaches its log last).
                self._poll.stop()
                self._update_view()
        if not replay and (events or self.state.state != before):
            self._update_view()
            if before != "finished" and self.state.state == "finished":
                self._finished()

    def _check_alive(self) -> None:
        """A process that died without a last word: killed, crashed, or never started."""
        assert self.state is not None and self.out is not None
        pid = runs.read_pid(self.out)
        self.state.pid = pid
        if pid is None:
            waited = time.monotonic() - self._started_at
            if waited < 60 or (waited < 180 and not runs.log_tail(self.out)):
                return  # still starting (Python and torch take a few seconds)
        elif runs.pid_alive(pid):
            return
        before = self.state.state
        self._follow(replay=True)  # its last events, written before it died
        runs.settle(self.state, alive=False)
        if self.state.state == "new":
            self.state.state, self.state.message = "killed", "The training process did not start."
        if before != "finished" and self.state.state == "finished":
            self._finished()
        self._update_view()

    def _finished(self) -> None:
        self.modelsChanged.emit()
        self.refresh_runs()

    def _show_sample(self, path: str) -> None:
        pix = QPixmap(path)
        if pix.isNull():
            return
        width = max(160, self.plot.width())
        shown = pix.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
        first = self.sample.pixmap().isNull()
        self.sample.setPixmap(shown)
        self.sample.setFixedHeight(shown.height())
        if first:  # bring the run's view into sight once it has something to show
            QTimer.singleShot(50, self._show_run_view)
        self.sample.setToolTip(f"The samples of step {Path(path).stem.rsplit('_', 1)[-1]}")

    def _show_run_view(self) -> None:
        """Scroll the panel to the run: its status, plot and samples are its lower part."""
        self.scroll.widget().layout().activate()
        bar = self.scroll.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _update_view(self) -> None:
        s = self.state
        if s is None:
            self._update_buttons()
            return
        words = STATE_WORDS.get(s.state, s.state)
        parts = [f"<b>{s.name}</b>: {words}"]
        if s.total:
            if s.minutes:
                parts.append(f"step {s.step}, {_clock(s.elapsed_s)} of {s.minutes:g} min")
            else:
                parts.append(f"step {s.step} of {s.total}")
        rate, eta = self._speed
        if s.state == "running" and rate:
            per_step = rate / self._batch if self._batch else 0.0
            parts.append(f"{per_step:.2f} steps/s" if per_step else f"{rate:.0f} images/s")
            parts.append(f"{_clock(eta)} left")
        if s.state == "finished" and s.metrics:
            parts.append("its measured figures are in Models > Manage models")
        text = " · ".join(parts)
        if s.message:
            text += f"<br>{s.message}"
        self.status.setText(text)
        i = self.runs.findData(str(s.out))
        if i >= 0:
            self.runs.setItemText(i, self._run_label(s))
        if s.state in ("failed", "killed"):
            tail = runs.log_tail(s.out)
            self.log_view.setPlainText("\n".join(tail) or "(the log is empty)")
            self.log_view.setVisible(True)
            free = runs.free_bytes(s.out)
            if free and free < LOW_DISK_BYTES:
                self.status.setText(text + f"<br>The disk is nearly full ({free // 2 ** 20} MB "
                                    "free).")
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running and bool(self.folder)
                                     and self.report is not None)
        self.pause_button.setEnabled(running and self.state is not None
                                     and self.state.state == "running")
        self.stop_button.setEnabled(self.pause_button.isEnabled())
        self.resume_button.setEnabled(not running and self.state is not None
                                      and self.state.resumable)
        s = self.state
        self.use_button.setVisible(s is not None and s.state == "finished"
                                   and s.request.get("family") in LATENT_FAMILIES)
        self.runningChanged.emit(running)

    def refresh_runs(self) -> None:
        """List the runs the panel started (newest first)."""
        current = str(self.out) if self.out else ""
        self.runs.clear()
        for r in runs.list_runs():
            if self.state is not None and r.out == self.out:
                r = self.state  # what the panel follows live is newer than the files say
            self.runs.addItem(self._run_label(r), str(r.out))
        self.runs.setCurrentIndex(max(0, self.runs.findData(current)) if current else -1)

    @staticmethod
    def _run_label(r: RunState) -> str:
        try:
            when = ", " + time.strftime("%Y-%m-%d %H:%M",
                                        time.localtime(r.out.stat().st_mtime))
        except OSError:  # the run folder was removed
            when = ""
        return f"{r.name} ({STATE_WORDS.get(r.state, r.state)}{when})"

    def _run_picked(self, index: int) -> None:
        path = self.runs.itemData(index)
        if path and (self.out is None or Path(path) != self.out) and not self.is_running():
            self.follow(Path(path))

    def resume_left_runs(self) -> RunState | None:
        """At start-up: follow the newest run still going, else the newest one that was
        paused or killed (so Resume is one click away); returns it."""
        found = runs.list_runs()
        for wanted in (ACTIVE, ("paused", "killed")):
            for r in found:
                if r.state in wanted:
                    self.follow(r.out)
                    self.refresh_runs()
                    return r
        return None

    def _use_model(self) -> None:
        s = self.state
        if s is not None and s.weights:
            self.useModel.emit(str(s.request.get("family", "")), Path(s.weights).stem)

    def manage_models(self) -> None:
        from desktop.widgets.model_manager import ModelManager

        dialog = ModelManager(self)
        dialog.modelsChanged.connect(self.modelsChanged)
        dialog.exec()
        dialog.deleteLater()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ---------------------------------------------------------------- panel protocol

    def build_spec(self, doc: Any) -> Any:
        raise JobError("The Train panel trains in its own process: press Start training.")

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("train")
        settings.setValue("folder", self.folder)
        fields.save(self, FIELDS, settings)
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("train")
        fields.load(self, FIELDS, settings)
        folder = str(settings.value("folder", "") or "")
        settings.endGroup()
        if folder and Path(folder).is_dir():
            self.set_folder(folder)

    def shutdown(self) -> None:
        """The app closes: stop reading (a run itself goes on unless it was asked to stop)."""
        self._poll.stop()
        self._stop_scan()
        self.dataset.shutdown()


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"
