"""The Scene panel: type a prompt, get ranked candidate pictures, redraw a region of one.

Generating and region editing are jobs of the panel (core/pipelines/scene.py) that the window
runs for it (``run_job``), one at a time; their candidates come back best first and fill
the panel's grid. Each candidate keeps the VQ codes it was drawn from: a region edit of a
candidate the canvas still shows unchanged resamples exactly those codes, where any other
picture has to be encoded first (and loses a little on the way).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.catalog import scene_priors
from core.jobs import MAX_SEED, ImageRef, JobError, Result
from core.specs.scene import (
    DEFAULT_PRIOR,
    MAX_CANDIDATES,
    SceneEditSpec,
    SceneSpec,
)
from desktop.canvas import Document
from desktop.inference import JobHandle
from desktop.panels import fields
from desktop.panels.base import (
    Panel,
    message_label,
    refresh_button,
)
from desktop.panels.fields import Field
from desktop.widgets.prompt_box import PromptBox
from desktop.widgets.thumbnail_list import ThumbnailList

THUMB = 96  # px of a candidate in the grid
MAX_TOP_K = 99_999  # beyond any codebook: the same as off


_D = SceneSpec()  # the job's defaults are the panel's
# The form: widget, spec field, settings key, range, default (desktop/panels/fields.py).
FIELDS = (
    Field("model", "model", default=DEFAULT_PRIOR),
    Field("prompt", "prompt", default=""),
    Field("count", "n", "count", range=(1, MAX_CANDIDATES), default=8,
          tip="Candidates drawn per run (a region edit keeps the better half)"),
    Field("seed", "seed", range=(0, MAX_SEED), default=1,
          tip="The same prompt, seed and settings draw the same candidates"),
    Field("temperature", "temperature", range=(0.05, 5.0), default=_D.temperature, step=0.05,
          tip="Below 1: safer, more alike candidates; above 1: more varied and more often "
          "wrong"),
    Field("top_k", "top_k", range=(0, MAX_TOP_K), default=_D.top_k, special="off",
          tip="Draw each code from the k likeliest only (0: off)"),
    Field("top_p", "top_p", range=(0.01, 1.0), default=_D.top_p, step=0.05,
          tip="Draw each code from the likeliest codes that together reach this probability "
          "(1: off)"),
    Field("guidance", "guidance", range=(0.0, 20.0), default=_D.guidance, step=0.5,
          tip="Classifier-free guidance: above 1 follows the prompt more closely at some cost "
          "in variety (1: off, twice as fast)"),
    Field("rerank", "rerank", default=True, text="Rank by fit to the prompt",
          tip="Order the candidates with the reranker (best first)"),
    Field("upscale", "upscale", default=True, text="Upscale x4",
          tip="Enlarge the candidates with the scenes super-resolution model"),
    Field("advanced_toggle", None, "advanced"),  # shows the finer settings
)


@dataclass
class Candidate:
    """One picture of a run, as the grid shows it."""

    image: np.ndarray
    spec: SceneSpec  # the job that drew it (a SceneEditSpec for a region edit)
    rank: int  # 1: the best of its run
    score: float | None  # the reranker's fit to the prompt (None: not reranked)
    check: str | None  # the scenes checker's verdict (None: no checker installed)
    codes: tuple[int, ...]  # the code grid it was decoded from

    def caption(self) -> str:
        score = "not reranked" if self.score is None else f"score {self.score:.3f}"
        return f"#{self.rank} · {score}" + (f"\n{self.check}" if self.check else "")


class ScenePanel(Panel):
    name = "scene"
    title = "Scene"
    FIELDS = FIELDS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._job: JobHandle | None = None  # the run in flight
        self._priors: dict[str, dict[str, Any]] = {}  # name -> scene_priors() entry
        self.candidates: list[Candidate] = []
        self.on_canvas: Candidate | None = None  # the candidate last sent to the canvas
        self._build()
        self.refresh_models()

    # ================================================================ layout

    def _build(self) -> None:
        fields.build(self, FIELDS)
        self.model = QComboBox()
        self.model.setToolTip("The scene model (a token transformer prior): shipped models and "
                              "the ones you trained")
        self.model.currentIndexChanged.connect(lambda _: self._model_changed())
        refresh = refresh_button(self.refresh_models)
        self.message = message_label()

        self.prompt = PromptBox()
        self.prompt.submitted.connect(self.generate)
        self.reading = QLabel()
        self.reading.setWordWrap(True)
        self.reading.setTextFormat(Qt.TextFormat.PlainText)
        self.reading.setVisible(False)

        dice = QPushButton("⚄")
        dice.setFixedWidth(32)
        dice.setToolTip("A new random seed")
        dice.clicked.connect(lambda: self.seed.setValue(random.randint(0, MAX_SEED)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed"))
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        seed_row.addWidget(QLabel("Candidates"))
        seed_row.addWidget(self.count)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._show_advanced)
        self.advanced = QWidget()
        self.advanced.setVisible(False)
        form = QFormLayout(self.advanced)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Guidance", self.guidance)
        form.addRow(self.rerank)
        form.addRow(self.upscale)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Draw candidates for the prompt (Enter in the prompt, "
                                        "Ctrl+Return)")
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop drawing (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.generate_button, 1)
        run_row.addWidget(self.cancel_button)

        self.grid = ThumbnailList(icon=THUMB, draggable=False)
        self.grid.setMinimumHeight(2 * (THUMB + 8) + 8)
        self.grid.setToolTip("Candidates, best first; double-click one to put it on the canvas")
        self.grid.currentRowChanged.connect(self._selected)
        self.grid.itemDoubleClicked.connect(lambda _: self.send_to_canvas())
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.send_button = QPushButton("Send to canvas")
        self.send_button.setToolTip("Put the selected candidate on the canvas (Ctrl+Z undoes "
                                    "it)")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send_to_canvas)
        self.edit_button = QPushButton("Edit region")
        # The prior reads the prompt as the caption of the whole picture (as DALL-E's
        # completions do): a prompt naming only the new object fights the kept part.
        self.edit_button.setToolTip("Redraw the canvas selection (Rectangle tool, R), keeping "
                                    "the rest of the picture. Describe the whole picture as it "
                                    "should be, e.g. \"two blue circles and a red heart on a "
                                    "yellow background\"")
        self.edit_button.clicked.connect(self.edit_region)
        result_row = QHBoxLayout()
        result_row.addWidget(self.send_button)
        result_row.addWidget(self.edit_button)

        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model"))
        model_row.addWidget(self.model, 1)
        model_row.addWidget(refresh)
        lay = QVBoxLayout(self)
        lay.addLayout(model_row)
        lay.addWidget(self.message)
        lay.addWidget(self.prompt)
        lay.addWidget(self.reading)
        lay.addLayout(seed_row)
        lay.addWidget(self.advanced_toggle)
        lay.addWidget(self.advanced)
        lay.addLayout(run_row)
        lay.addWidget(self.progress)
        lay.addWidget(self.grid, 1)
        lay.addWidget(self.caption)
        lay.addLayout(result_row)

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown
                                          else Qt.ArrowType.RightArrow)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ================================================================ models

    def refresh_models(self) -> None:
        """List the installed scene priors (their cards only; no weights are read here)."""
        wanted = self.current_model() or DEFAULT_PRIOR
        self._priors = {}
        for prior in scene_priors():  # a shipped name comes first and wins, as in loading
            self._priors.setdefault(prior["name"], prior)
        self.model.blockSignals(True)
        self.model.clear()
        for name, prior in self._priors.items():
            self.model.addItem(f"{name} ({prior['source']})", name)
            self.model.setItemData(self.model.count() - 1,
                                   f"{prior['path']}\nKnows {len(prior['vocab'])} words and "
                                   f"reads the first {prior['text_len']} of a prompt.",
                                   Qt.ItemDataRole.ToolTipRole)
        self.model.setCurrentIndex(max(0, self.model.findData(wanted)))
        self.model.blockSignals(False)
        self._model_changed()
        if not self._priors:
            self.show_message("No scene model is installed. Train one (`easel train "
                              "vqvae_scenes`, then `easel train prior_scenes`); it then "
                              "appears here.")

    def current_model(self) -> str:
        return self.model.currentData() or ""

    def set_model(self, name: str) -> bool:
        """Choose the prior ``name`` (False if it is not installed)."""
        if self.model.findData(name) < 0:
            self.refresh_models()
        index = self.model.findData(name)
        if index >= 0:
            self.model.setCurrentIndex(index)
        return index >= 0

    def _model_changed(self) -> None:
        prior = self._priors.get(self.current_model())
        self.prompt.set_vocabulary(prior["vocab"] if prior else [])

    # ================================================================ runs

    def _settings(self) -> dict[str, Any]:
        """The spec fields the controls set; JobError (readable) when they do not make a run."""
        if not self.current_model():
            raise JobError("No scene model is installed or chosen.")
        prompt = " ".join(self.prompt.text().split())
        if not prompt:
            raise JobError("Type a prompt first, e.g. \"a red star to the left of a blue "
                           "circle\".")
        return {**fields.spec_values(self, FIELDS), "prompt": prompt}

    def current_spec(self) -> SceneSpec:
        return SceneSpec(**self._settings())

    def run_in_panel(self) -> bool:
        self.generate()  # the candidates belong in the grid, not the result strip
        return True

    def generate(self) -> None:
        if self._refuse_while_running():
            return
        try:
            spec = self.current_spec()
        except JobError as exc:
            self.show_message(str(exc))
            return
        self._start(spec)

    def edit_region(self) -> None:
        """Redraw the canvas selection's bounding box for the prompt."""
        if self._refuse_while_running():
            return
        doc = self.doc
        if doc is None or doc.is_empty():
            self.show_message("There is no picture to edit: generate a scene and send it to "
                              "the canvas, or open one.")
            return
        box = _selection_box(doc)
        if box is None:
            self.show_message("Select the region to redraw first: drag a rectangle on the "
                              "canvas (Rectangle tool, R), describe it in the prompt, then "
                              "press Edit region.")
            return
        picture = doc.image_array()
        try:
            spec = SceneEditSpec(**self._settings(), image=ImageRef.of(picture), box=box,
                                 codes=self._codes_of(picture))
        except JobError as exc:
            self.show_message(str(exc))
            return
        self._start(spec)

    def _codes_of(self, picture: np.ndarray) -> tuple[int, ...]:
        """The codes of the picture when it is the candidate last sent, unchanged, and of the
        chosen model; () has the job encode the picture instead."""
        sent = self.on_canvas
        if sent is None or sent.spec.model != self.current_model() \
                or not np.array_equal(sent.image, picture):
            return ()
        return sent.codes

    def _refuse_while_running(self) -> bool:
        if self._job is not None:
            self.show_message("Still drawing: wait for it, or cancel it (Esc).")
        return self._job is not None

    def _start(self, spec: SceneSpec) -> None:
        job = self.run_job(spec)
        if job is None:
            return
        self._job = job
        self.show_message("")
        self._set_running(True)
        job.progress.connect(self._progress)
        job.finished.connect(lambda result: self._finish(spec, result))
        job.failed.connect(lambda message, _: self._finish(message=message))
        job.cancelled.connect(lambda: self._finish(message="Cancelled."))

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def is_running(self) -> bool:
        return self._job is not None

    def _set_running(self, running: bool) -> None:
        self.generate_button.setEnabled(not running)
        self.edit_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        self.progress.setRange(0, 0)  # busy until the first step arrives
        self.progress.setFormat("Loading the models")

    def _finish(self, spec: SceneSpec | None = None, result: Result | None = None,
                message: str = "") -> None:
        """The running job ended: with candidates for ``spec``, or a message."""
        self._job = None
        self._set_running(False)
        if result is not None:
            self._show_candidates(spec, result)
        if message:
            self.show_message(message)

    def _progress(self, step: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(step, total))
        self.progress.setFormat(message or "%p%")

    # ================================================================ candidates

    def _show_candidates(self, spec: SceneSpec, result: Result) -> None:
        info = result.info
        n = len(result.images)
        scores = info.get("scores") or [None] * n
        checks = info.get("checks") or [None] * n
        codes = info.get("codes") or [()] * n
        self.candidates = [Candidate(image, spec, i + 1, scores[i], checks[i], tuple(codes[i]))
                           for i, image in enumerate(result.images)]
        self.grid.clear()
        for i, c in enumerate(self.candidates):
            self.grid.add_thumbnail(c.image, str(i), c.caption())
        self.grid.setCurrentRow(0)
        lines = [f"Read as: {info.get('reading', '')}"]
        lines += [f"• {notice}" for notice in info.get("notices", [])]
        self.reading.setText("\n".join(lines))
        self.reading.setToolTip(f"The words the model read: {info.get('read_as', '')}")
        self.reading.setVisible(True)

    def _selected(self, row: int) -> None:
        chosen = 0 <= row < len(self.candidates)
        self.caption.setText(self.candidates[row].caption() if chosen else "")
        self.send_button.setEnabled(chosen)

    def send_to_canvas(self) -> None:
        """The selected candidate onto the canvas (one undoable edit): a region edit replaces
        the picture it edited; a new scene becomes the picture, or is pasted into it."""
        row = self.grid.currentRow()
        if not 0 <= row < len(self.candidates):
            self.show_message("Generate candidates and pick one first.")
            return
        c = self.candidates[row]
        if isinstance(c.spec, SceneEditSpec):
            self.pictureEdited.emit(c.image, c.spec.to_dict(), f"Scene edit #{c.rank}")
        else:
            self.resultToCanvas.emit(c.image, c.spec.to_dict(), f"Scene #{c.rank}")
        self.on_canvas = c

    # ================================================================ Panel API

    def restore(self, spec: dict[str, Any]) -> list[str]:
        cls = {"scene": SceneSpec, "scene_edit": SceneEditSpec}.get(spec.get("kind"))
        if cls is None:
            return [f"A {spec.get('kind')} job has nothing the Scene panel can show."]
        try:
            parsed = cls.from_dict(spec, load_images=False)  # settings only: reads no file
        except JobError as exc:
            return [str(exc)]
        problems = []
        if not self.set_model(parsed.model):
            problems.append(f"The scene model {parsed.model!r} is not installed here; "
                            f"{self.current_model() or 'none'} is chosen instead.")
        problems += fields.restore(self, FIELDS, spec, skip=("model",))
        self.show_message("Restored the prompt and settings of this picture: "
                          + ("select the region and press Edit region to redraw it again."
                             if cls is SceneEditSpec else
                             "Generate draws its candidates again."))
        return problems

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("scene")
        fields.save(self, FIELDS, settings)
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("scene")
        fields.load(self, FIELDS, settings)
        settings.endGroup()


def _selection_box(doc: Document) -> tuple[float, float, float, float] | None:
    """The bounding box of the canvas selection as fractions of the picture (None: none)."""
    mask = doc.mask_array()
    ys, xs = np.nonzero(mask >= 128)
    if not len(xs):
        return None
    h, w = mask.shape
    return (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)


