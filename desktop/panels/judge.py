"""The Judge panel: what one of Easel's classifiers sees in the canvas picture.

Three jobs (core/pipelines/judge.py), run by the panel itself through the inference service:
"Fool" finds the smallest change within an L-infinity budget that flips the classifier's reading
of one attribute, "Invert" rebuilds the picture from the features of one layer, and "Dream"
amplifies a class (or a layer's activations), from the picture or from grey. The panel shows the
picture as given, the result and (for Fool) the change magnified, with the figures the job
reports; "To canvas" sends the result to the result strip's canvas like any other result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.catalog import classifiers
from core.jobs import MAX_SEED, JobError, JobSpec
from core.specs.judge import (
    DEFAULT_MODEL,
    FOOL_METHODS,
    MAX_BUDGET,
    MAX_OCTAVES,
    MAX_STEPS,
    JudgeDreamSpec,
    JudgeFoolSpec,
    JudgeInvertSpec,
    layer_names,
    summary,
)
from desktop.canvas import Document
from desktop.canvas.qimage import qimage_from_array
from desktop.inference import JobHandle
from desktop.panels import fields
from desktop.panels.base import Panel, message_label, refresh_button, shrinkable
from desktop.panels.fields import Field
from desktop.panels.inpaint import document_image_ref

MODES = (("fool", "Fool it (adversarial example)", JudgeFoolSpec),
         ("invert", "Invert a layer's features", JudgeInvertSpec),
         ("dream", "Dream (amplify what it reads)", JudgeDreamSpec))
KINDS = {cls.kind: mode for mode, _, cls in MODES}
THUMB = 80  # px of each picture shown (three side by side fit a narrow dock)
_F, _I, _D = JudgeFoolSpec(attribute="x"), JudgeInvertSpec(), JudgeDreamSpec()
FOOL, INVERT, DREAM = _F.kind, _I.kind, _D.kind
FIELDS = (
    Field("model", "model", default=DEFAULT_MODEL, label="Classifier",
          missing="The classifier {value!r} is not installed; using another.", fallback=True),
    Field("layer", "layer", default="", job=(INVERT, DREAM)),
    Field("attribute", "attribute", default="", job=(FOOL, DREAM),
          missing="The classifier does not read {value!r}."),
    Field("method", "method", default=_F.method, job=FOOL, label="Attack"),
    Field("budget", "budget", range=(1.0, MAX_BUDGET), default=_F.budget, step=1, decimals=1,
          suffix=" /255", job=FOOL, tip="The largest change of any pixel (L-infinity), in "
          "1/255 of the range"),
    Field("fool_steps", "steps", range=(1, MAX_STEPS), default=_F.steps, job=FOOL,
          tip="PGD steps (it stops at the first that flips the reading)"),
    Field("invert_steps", "steps", range=(1, MAX_STEPS), default=_I.steps, job=INVERT),
    Field("tv_weight", "tv_weight", range=(0.0, 100.0), default=_I.tv_weight, step=0.01,
          decimals=3, job=INVERT, label="Smoothness",
          tip="Total variation: higher gives a smoother picture"),
    Field("dream_steps", "steps", range=(1, MAX_STEPS), default=_D.steps, job=DREAM,
          tip="Steps per octave"),
    Field("strength", "strength", range=(0.001, 1.0), default=_D.strength, step=0.005,
          decimals=3, job=DREAM),
    Field("octaves", "octaves", range=(1, MAX_OCTAVES), default=_D.octaves, job=DREAM),
    Field("from_grey", None, None, default=False, text="Start from grey (draw the class)"),
    Field("seed", "seed", range=(0, MAX_SEED), default=0),
)


class JudgePanel(Panel):
    name = "judge"
    title = "Judge"
    FIELDS = FIELDS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        fields.build(self, FIELDS)
        self.job: JobHandle | None = None
        self.result_images: list[np.ndarray] = []
        self.result_spec: dict[str, Any] | None = None
        self._models: dict[str, dict[str, Any]] = {}

        self.mode = QComboBox()
        for key, text, _ in MODES:
            self.mode.addItem(text, key)
        self.mode.setToolTip("What to show of the classifier")
        self.model = shrinkable(QComboBox())
        self.model.setToolTip("The classifier (a judge: shipped, or one you trained)")
        self.layer = shrinkable(QComboBox())
        self.attribute = shrinkable(QComboBox())
        self.method = QComboBox()
        for key in FOOL_METHODS:
            self.method.addItem({"pgd": "PGD (iterated, stronger)",
                                 "fgsm": "FGSM (one step)"}[key], key)

        form = QFormLayout()
        form.addRow("Show", self.mode)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(refresh_button(self.refresh_models))
        form.addRow("Classifier", model_row)
        form.addRow("Attribute", self.attribute)
        form.addRow("Layer", self.layer)
        self.settings_stack = QStackedWidget()
        for rows in ((("Attack", self.method), ("Budget", self.budget),
                      ("Steps", self.fool_steps)),
                     (("Steps", self.invert_steps), ("Smoothness", self.tv_weight)),
                     (("Steps", self.dream_steps), ("Strength", self.strength),
                      ("Octaves", self.octaves), ("", self.from_grey))):
            page = QWidget()
            page_form = QFormLayout(page)
            page_form.setContentsMargins(0, 0, 0, 0)
            for label, widget in rows:
                page_form.addRow(label, widget) if label else page_form.addRow(widget)
            self.settings_stack.addWidget(page)
        form.addRow(self.settings_stack)
        form.addRow("Seed", self.seed)

        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Run on the canvas picture (Ctrl+Enter)")
        self.run_button.clicked.connect(self.runRequested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.canvas_button = QPushButton("To canvas")
        self.canvas_button.setToolTip("Send the result to the canvas (an undoable edit)")
        self.canvas_button.setEnabled(False)
        self.canvas_button.clicked.connect(self.send_to_canvas)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.canvas_button)

        shown = QGroupBox("What it sees")
        grid = QGridLayout(shown)
        self.views: dict[str, QLabel] = {}
        for col, key in enumerate(("original", "result", "perturbation")):
            title = QLabel({"original": "Picture", "result": "Result",
                            "perturbation": "Change, magnified"}[key])
            view = QLabel()
            view.setFixedSize(THUMB, THUMB)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view.setStyleSheet("background: #888;")
            grid.addWidget(title, 0, col)
            grid.addWidget(view, 1, col)
            self.views[key] = view
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.figures = QLabel()
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.status, 2, 0, 1, 3)
        grid.addWidget(self.figures, 3, 0, 1, 3)
        self.message = message_label()

        hint = QLabel("Open a picture, choose a classifier and what to show, then Run. An "
                      "adversarial example fools this classifier only.")
        hint.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.message)
        lay.addWidget(shown)
        lay.addStretch(1)

        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.model.currentIndexChanged.connect(self._model_changed)
        self.from_grey.toggled.connect(self._mode_changed)
        self.refresh_models()
        self._mode_changed()

    # ---------------------------------------------------------------- choices

    def current_mode(self) -> str:
        return str(self.mode.currentData())

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))

    def refresh_models(self) -> None:
        """List the installed classifiers (shipped and the user's) again."""
        current = self.model.currentData() or DEFAULT_MODEL
        self._models = {m["name"]: m for m in classifiers()}
        self.model.blockSignals(True)
        self.model.clear()
        for name, m in self._models.items():
            self.model.addItem(f"{name} ({m['world'] or 'own data'}, {m['source']})", name)
        self.model.setCurrentIndex(max(0, self.model.findData(current)))
        self.model.blockSignals(False)
        self._model_changed()

    def _model_changed(self) -> None:
        info = self._models.get(self.model.currentData() or "", {})
        layer = self.layer.currentData()
        self.layer.clear()
        self.layer.addItem("Default", "")
        for name in info.get("layers", layer_names()):
            self.layer.addItem(name, name)
        self.layer.setCurrentIndex(max(0, self.layer.findData(layer)))
        self._fill_attributes()

    def _fill_attributes(self) -> None:
        info = self._models.get(self.model.currentData() or "", {})
        mode = self.current_mode()
        current = self.attribute.currentData()
        self.attribute.clear()
        if mode == "dream":
            self.attribute.addItem("None (a layer's activations)", "")
        for head, classes in info.get("heads", {}).items():
            if mode == "fool":
                self.attribute.addItem(f"{head} (away from what it reads)", head)
            for cls in classes:
                self.attribute.addItem(f"{head} = {cls}", f"{head}={cls}")
        if mode == "dream":
            for head, classes in info.get("object_heads", {}).items():
                for cls in classes:
                    self.attribute.addItem(f"an object's {head} = {cls}", f"{head}={cls}")
        self.attribute.setCurrentIndex(max(0, self.attribute.findData(current)))

    def _mode_changed(self) -> None:
        mode = self.current_mode()
        self.settings_stack.setCurrentIndex([m for m, _, _ in MODES].index(mode))
        self._fill_attributes()
        self.attribute.setEnabled(mode != "invert")
        self.layer.setEnabled(mode != "fool")
        self.views["perturbation"].setVisible(mode == "fool")

    # ---------------------------------------------------------------- running

    def build_spec(self, doc: Document) -> JobSpec:
        if doc.is_empty():
            raise JobError("Open a picture first (File > Open, drag one in, or paste).")
        if self.model.currentData() is None:
            raise JobError("No classifier is installed: train one with easel train judge_faces.")
        mode = self.current_mode()
        cls = next(c for m, _, c in MODES if m == mode)
        values = fields.spec_values(self, FIELDS, cls.kind)
        if mode == "dream" and self.from_grey.isChecked():
            values["start"] = "grey"
        if mode == "dream" and values.get("attribute"):
            values["layer"] = ""  # a class is amplified: the layer is not asked for
        return cls(image=document_image_ref(doc), **values)

    def run_in_panel(self) -> bool:
        self.run()
        return True

    def run(self) -> None:
        if self.job is not None:
            return
        try:
            if self.doc is None:
                raise JobError("Open a picture first.")
            spec = self.build_spec(self.doc)
        except JobError as exc:
            self.show_message(str(exc))
            return
        job = self.run_job(spec)
        if job is None:
            return
        self.show_message("")
        self.job = job
        self._show("original", spec.image.array()[..., :3])
        for key in ("result", "perturbation"):
            self.views[key].clear()
        self.figures.setText("")
        self.status.setText("Starting…")
        self.canvas_button.setEnabled(False)
        job.progress.connect(self._progress)
        job.preview.connect(lambda image: self._show("result", image))
        job.finished.connect(self._finished)
        job.failed.connect(lambda message, _details: self._ended(message))
        job.cancelled.connect(lambda: self._ended("Cancelled."))
        self._set_running(True)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _progress(self, step: int, total: int, message: str) -> None:
        self.status.setText(f"{step}/{total}: {message}")

    def _finished(self, result: Any) -> None:
        self.result_images = list(result.images)
        self.result_spec = result.spec.to_dict()
        self._show("result", result.images[0])
        if result.spec.kind == FOOL:
            self._show("perturbation", result.images[1])
        text = summary(result.spec.kind, result.info)
        notes = result.info.get("notes", [])
        self.figures.setText("\n".join([text, *notes]))
        self.canvas_button.setEnabled(True)
        self._ended("Done.")

    def _ended(self, status: str) -> None:
        self.job = None
        self.status.setText(status)
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _show(self, key: str, image: np.ndarray) -> None:
        pixmap = QPixmap.fromImage(qimage_from_array(np.ascontiguousarray(image)))
        self.views[key].setPixmap(pixmap.scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation))  # a 64 px picture stays crisp

    def send_to_canvas(self) -> None:
        if self.result_images and self.result_spec is not None:
            mode = KINDS.get(self.result_spec.get("kind", ""), "judge")
            self.resultToCanvas.emit(self.result_images[0], self.result_spec, f"Judge: {mode}")

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ---------------------------------------------------------------- Panel API

    def restore(self, spec: dict[str, Any]) -> list[str]:
        mode = KINDS.get(spec.get("kind", ""))
        if mode is None:
            return [f"The Judge panel does not make {spec.get('kind')!r} jobs."]
        self.set_mode(mode)
        self.model.setCurrentIndex(max(0, self.model.findData(spec.get("model"))))
        self._model_changed()
        problems = fields.restore(self, FIELDS, spec)
        self.from_grey.setChecked(spec.get("start") == "grey")
        return problems

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("judge")
        settings.setValue("mode", self.current_mode())
        fields.save(self, FIELDS, settings)
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("judge")
        self.set_mode(str(settings.value("mode", "fool")))
        fields.load(self, FIELDS, settings)
        settings.endGroup()
        self._mode_changed()

    def shutdown(self) -> None:
        self.cancel()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy and self.job is None)

