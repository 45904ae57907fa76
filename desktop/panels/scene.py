"""The Scene panel: type a prompt, get ranked candidate pictures, redraw a region of one.

Generating and region editing are jobs of the panel (core/pipelines/scene.py) that the window
runs for it (``run_job``), one at a time; their candidates come back best first and fill
the panel's grid. Each candidate keeps the VQ codes it was drawn from: a region edit of a
candidate the canvas still shows unchanged resamples exactly those codes, where any other
picture has to be encoded first (and loses a little on the way).

A layout model (a layout prior) draws each candidate from a layout (background, and each
object's shape, colour and box): the chosen candidate's shows as labelled boxes over its
picture (desktop/widgets/layout_editor.py). The artist moves, resizes, relabels, deletes or
draws boxes and presses Redraw from layout: the same seed draws the image codes again for that
layout. A candidate sent to the canvas carries its layout in its spec, so a saved PNG keeps it
and dropping the PNG back shows the boxes again.

The model picker also lists the Stable Diffusion checkpoints the user imported (after a
separator). With one chosen, Generate runs an ``sd_scene`` job (core/pipelines/sd.py) with
its own settings (negative prompt, steps, CFG scale, size, sampler) instead of the prior's;
its step previews show in the grid while it draws. The panel reads model cards only: no torch,
diffusers or transformers on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import json
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
    QLineEdit,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.catalog import scene_priors, sd_models
from core.data.layouts import (
    LayoutError,
    describe_layout,
    layout_from_dict,
    layout_json,
    layout_to_dict,
)
from core.data.scenes import COLOUR_NAMES, SHAPES
from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec, Result
from core.specs.scene import (
    DEFAULT_PRIOR,
    MAX_CANDIDATES,
    SceneEditSpec,
    SceneSpec,
)
from core.specs.sd import MAX_CFG, MAX_SIZE, MAX_STEPS, SD_FAMILY, SD_SAMPLERS, SDSceneSpec
from desktop.canvas import Document
from desktop.inference import JobHandle
from desktop.panels import fields
from desktop.panels.base import (
    Panel,
    message_label,
    refresh_button,
)
from desktop.panels.fields import Field
from desktop.widgets.layout_editor import LayoutEditor
from desktop.widgets.prompt_box import PromptBox
from desktop.widgets.thumbnail_list import ThumbnailList

THUMB = 96  # px of a candidate in the grid
MAX_TOP_K = 99_999  # beyond any codebook: the same as off
PRIOR_JOBS = ("scene", "scene_edit")  # a scene prior's jobs
SD_JOB = SDSceneSpec.kind  # a Stable Diffusion model's
FAMILY_ROLE = Qt.ItemDataRole.UserRole + 1  # a model entry's family: "prior" or "sd"
SAMPLER_NAMES = {"ddim": "DDIM", "euler": "Euler", "dpm++": "DPM++ 2M"}
PREDICTION_NAMES = {"": "As its model card says", "epsilon": "Noise (epsilon)",
                    "v": "v-prediction"}


_D = SceneSpec()  # the job's defaults are the panel's
_SD = {f.name: f.default for f in dataclasses.fields(SDSceneSpec)}
# The form: widget, spec field, settings key, range, default (desktop/panels/fields.py). The
# model, prompt and seed serve both kinds of model; the rest belong to one kind's jobs.
FIELDS = (
    Field("model", "model", default=DEFAULT_PRIOR),
    Field("prompt", "prompt", default=""),
    Field("count", "n", "count", range=(1, MAX_CANDIDATES), default=8, job=PRIOR_JOBS,
          tip="Candidates drawn per run (a region edit keeps the better half)"),
    Field("seed", "seed", range=(0, MAX_SEED), default=1,
          tip="The same prompt, seed and settings draw the same pictures (on the same "
          "device)"),
    Field("temperature", "temperature", range=(0.05, 5.0), default=_D.temperature, step=0.05,
          job=PRIOR_JOBS, tip="Below 1: safer, more alike candidates; above 1: more varied "
          "and more often wrong"),
    Field("top_k", "top_k", range=(0, MAX_TOP_K), default=_D.top_k, special="off",
          job=PRIOR_JOBS, tip="Draw each code from the k likeliest only (0: off)"),
    Field("top_p", "top_p", range=(0.01, 1.0), default=_D.top_p, step=0.05, job=PRIOR_JOBS,
          tip="Draw each code from the likeliest codes that together reach this probability "
          "(1: off)"),
    Field("guidance", "guidance", range=(0.0, 20.0), default=_D.guidance, step=0.5,
          job=PRIOR_JOBS, tip="Classifier-free guidance: above 1 follows the prompt more "
          "closely at some cost in variety (1: off, twice as fast)"),
    Field("rerank", "rerank", default=True, text="Rank by fit to the prompt", job=PRIOR_JOBS,
          tip="Order the candidates with the reranker (best first)"),
    Field("upscale", "upscale", default=True, text="Upscale x4", job=PRIOR_JOBS,
          tip="Enlarge the candidates with the scenes super-resolution model"),
    Field("advanced_toggle", None, "advanced"),  # shows the finer settings
    Field("negative", "negative_prompt", default=_SD["negative_prompt"], job=SD_JOB,
          tip="What the picture should not show, e.g. \"blurry, text, watermark\""),
    Field("steps", "steps", range=(1, MAX_STEPS), default=_SD["steps"], job=SD_JOB,
          tip="Denoising steps: more is slower and usually more detailed (20-30 is typical)"),
    Field("cfg", "cfg", range=(0.0, MAX_CFG), default=_SD["cfg"], step=0.5, job=SD_JOB,
          label="CFG scale", tip="Classifier-free guidance: how closely the picture follows "
          "the prompt (7 is typical; 1 or less: the prompt alone, twice as fast)"),
    Field("sd_width", "width", range=(0, MAX_SIZE), default=_SD["width"], step=64, suffix=" px",
          special="model's own", job=SD_JOB,
          tip="Picture width: a multiple of 8 pixels from 64 (model's own: 512 or 768)"),
    Field("sd_height", "height", range=(0, MAX_SIZE), default=_SD["height"], step=64,
          suffix=" px", special="model's own", job=SD_JOB,
          tip="Picture height: a multiple of 8 pixels from 64 (model's own: 512 or 768)"),
    Field("sampler", "sampler", default=_SD["sampler"], job=SD_JOB),
    Field("prediction", "prediction", default=_SD["prediction"], job=SD_JOB),
    Field("attention_slicing", "attention_slicing", default=_SD["attention_slicing"],
          text="Attention slicing", job=SD_JOB,
          tip="Computes attention in slices: the same picture with less memory, a little "
          "slower"),
    Field("vae_tiling", "vae_tiling", default=_SD["vae_tiling"], job=SD_JOB,
          text="Decode in tiles",
          tip="Decodes the picture in tiles: less memory for large pictures; seams may show"),
)


@dataclass
class Candidate:
    """One picture of a run, as the grid shows it."""

    image: np.ndarray
    spec: SceneSpec | SDSceneSpec  # the job that drew it (SceneEditSpec: a region edit)
    rank: int  # 1: the best of its run
    score: float | None  # the reranker's fit to the prompt (None: not reranked)
    check: str | None  # the scenes checker's verdict (None: no checker installed)
    codes: tuple[int, ...]  # the code grid it was decoded from
    layout: dict[str, Any] | None = None  # the layout it was drawn from (a layout model's)

    def sent_spec(self) -> dict[str, Any]:
        """The spec a picture of this candidate carries: its run's, with the candidate's own
        layout when it has one (Redraw from layout draws that layout again)."""
        if self.layout is not None and type(self.spec) is SceneSpec:
            return self.spec.replace(layout=layout_json(layout_from_dict(self.layout))).to_dict()
        return self.spec.to_dict()

    def caption(self) -> str:
        if isinstance(self.spec, SDSceneSpec):
            h, w = self.image.shape[:2]
            return f"{self.spec.model} · seed {self.spec.seed} · {w}×{h} px"
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
        self._sd: dict[str, dict[str, Any]] = {}  # name -> sd_models() entry
        self.candidates: list[Candidate] = []
        self.on_canvas: Candidate | None = None  # the candidate last sent to the canvas
        self.previewing = False  # the grid shows the run's step preview, not the candidates
        self._build()
        self.refresh_models()

    # ================================================================ layout

    def _build(self) -> None:
        fields.build(self, FIELDS)
        self.model = QComboBox()
        self.model.setToolTip("The scene model: a scene prior (a token transformer, shipped or "
                              "trained by you) or a Stable Diffusion checkpoint you imported "
                              "(Models > Manage models)")
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
        self.count_label = QLabel("Candidates")
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed"))
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        seed_row.addWidget(self.count_label)
        seed_row.addWidget(self.count)

        self.sd_box = self._build_sd_box()

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._show_advanced)
        self.advanced = QWidget()
        self.advanced.setVisible(False)
        self.prior_advanced = QWidget()
        form = QFormLayout(self.prior_advanced)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Guidance", self.guidance)
        form.addRow(self.rerank)
        form.addRow(self.upscale)
        self.sd_advanced = QWidget()
        form = QFormLayout(self.sd_advanced)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Prediction", self.prediction)
        form.addRow(self.attention_slicing)
        form.addRow(self.vae_tiling)
        advanced = QVBoxLayout(self.advanced)
        advanced.addWidget(self.prior_advanced)
        advanced.addWidget(self.sd_advanced)

        self.generate_button = QPushButton("Generate")
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
        self.grid.currentRowChanged.connect(self._selected)
        self.grid.itemDoubleClicked.connect(lambda _: self.send_to_canvas())
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.send_button = QPushButton("Send to canvas")
        self.send_button.setToolTip("Put the selected picture on the canvas (Ctrl+Z undoes it)")
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
        self.layout_box = self._build_layout_box()

        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model"))
        model_row.addWidget(self.model, 1)
        model_row.addWidget(refresh)
        lay = QVBoxLayout(self)
        lay.addLayout(model_row)
        lay.addWidget(self.message)
        lay.addWidget(self.prompt)
        lay.addWidget(self.reading)
        lay.addWidget(self.sd_box)
        lay.addLayout(seed_row)
        lay.addWidget(self.advanced_toggle)
        lay.addWidget(self.advanced)
        lay.addLayout(run_row)
        lay.addWidget(self.progress)
        lay.addWidget(self.grid, 1)
        lay.addWidget(self.caption)
        lay.addLayout(result_row)
        lay.addWidget(self.layout_box)

    def _build_layout_box(self) -> QWidget:
        """The chosen candidate's layout as boxes over it, the label of the selected (or the
        next drawn) box, and Redraw from layout (shown while a layout model is chosen)."""
        self.layout_editor = LayoutEditor()
        self.layout_editor.changed.connect(self._layout_changed)
        self.layout_editor.selectionChanged.connect(lambda _: self._show_box_label())
        self.layout_editor.refused.connect(self.show_message)
        self.layout_source: SceneSpec | None = None  # the run whose seed a redraw keeps
        self.background = QComboBox()
        self.box_shape = QComboBox()
        self.box_colour = QComboBox()
        for combo, names in ((self.background, COLOUR_NAMES), (self.box_shape, SHAPES),
                             (self.box_colour, COLOUR_NAMES)):
            combo.addItems(list(names))
        self.background.setToolTip("The background colour of the layout")
        self.box_shape.setToolTip("The shape of the selected box (or of the next one you draw)")
        self.box_colour.setToolTip("The colour of the selected box (or of the next one you "
                                   "draw)")
        self.background.currentTextChanged.connect(self.layout_editor.set_background)
        self.box_shape.currentTextChanged.connect(
            lambda text: self.layout_editor.relabel(shape=text))
        self.box_colour.currentTextChanged.connect(
            lambda text: self.layout_editor.relabel(colour=text))
        self.delete_box_button = QPushButton("Delete box")
        self.delete_box_button.setToolTip("Remove the selected box from the layout (Delete)")
        self.delete_box_button.clicked.connect(self.layout_editor.delete_selected)
        self.redraw_button = QPushButton("Redraw from layout")
        self.redraw_button.setToolTip("Draw the picture again for the layout as the boxes show "
                                      "it, with the same seed")
        self.redraw_button.clicked.connect(self.redraw_from_layout)
        self.redraw_button.setEnabled(False)  # until a candidate with a layout is chosen
        labels = QHBoxLayout()
        labels.addWidget(QLabel("Box"))
        labels.addWidget(self.box_colour, 1)
        labels.addWidget(self.box_shape, 1)
        labels.addWidget(self.delete_box_button)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Background"))
        bottom.addWidget(self.background, 1)
        bottom.addWidget(self.redraw_button, 1)
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Layout of the chosen candidate"))
        lay.addWidget(self.layout_editor)
        lay.addLayout(labels)
        lay.addLayout(bottom)
        box.setVisible(False)
        self._show_box_label()
        return box

    def _build_sd_box(self) -> QWidget:
        """A Stable Diffusion model's own settings: negative prompt, steps, CFG scale, size,
        sampler (shown while one is chosen)."""
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("blurry, low quality, text")
        self.negative.setToolTip(next(f.tip for f in FIELDS if f.name == "negative"))
        self.negative.returnPressed.connect(self.generate)
        self.sampler = QComboBox()
        for key in SD_SAMPLERS:
            self.sampler.addItem(SAMPLER_NAMES[key], key)
        self.sampler.setCurrentIndex(self.sampler.findData(_SD["sampler"]))
        self.sampler.setToolTip("How the noise is taken away step by step: DPM++ 2M and Euler "
                                "give good pictures in 20-30 steps, DDIM is the classic")
        self.prediction = QComboBox()
        for key, text in PREDICTION_NAMES.items():
            self.prediction.addItem(text, key)
        self.prediction.setToolTip("What the model predicts: its card says (from the import); "
                                   "change it only when its pictures come out as noise or grey")
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Negative", self.negative)
        steps = QHBoxLayout()
        steps.addWidget(self.steps, 1)
        steps.addWidget(QLabel("CFG scale"))
        steps.addWidget(self.cfg, 1)
        form.addRow("Steps", steps)
        size = QHBoxLayout()
        size.addWidget(self.sd_width, 1)
        size.addWidget(QLabel("×"))
        size.addWidget(self.sd_height, 1)
        form.addRow("Size", size)
        form.addRow("Sampler", self.sampler)
        box.setVisible(False)
        return box

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown
                                          else Qt.ArrowType.RightArrow)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ================================================================ models

    def refresh_models(self) -> None:
        """List the installed scene priors, then the imported Stable Diffusion models that draw
        from text (their cards only; no weights are read here)."""
        wanted = (self.current_model(), self.current_family()) if self.current_model() \
            else (DEFAULT_PRIOR, "prior")
        self._priors = {}
        for prior in scene_priors():  # a shipped name comes first and wins, as in loading
            self._priors.setdefault(prior["name"], prior)
        # The default model heads the list, then the others in the order they were found.
        self._priors = dict(sorted(self._priors.items(), key=lambda kv: kv[0] != DEFAULT_PRIOR))
        # 9-channel inpainting models fill masks only: the Inpaint panel lists them
        self._sd = {m["name"]: m for m in sd_models() if not m["inpainting"]}
        self.model.blockSignals(True)
        self.model.clear()
        for name, prior in self._priors.items():
            self._add_model(name, "prior", f"{name} ({prior['source']})",
                            f"{prior['path']}\nKnows {len(prior['vocab'])} words and reads the "
                            f"first {prior['text_len']} of a prompt.")
        if self._priors and self._sd:
            self.model.insertSeparator(self.model.count())
        for name, m in self._sd.items():
            source = "yours" if m["source"] == "user" else m["source"]
            self._add_model(name, SD_FAMILY, f"{name} ({m['label']}, {source})",
                            f"{m['file']}\n{m['label']}: any words; negative prompt, steps, "
                            "CFG scale, size and sampler are its own settings.")
        self.model.setCurrentIndex(max(0, self._index_of(*wanted)))
        self.model.blockSignals(False)
        self._model_changed()
        if not self._priors and not self._sd:
            self.show_message("No scene model is installed. Train one (`easel train "
                              "vqvae_scenes16`, then `easel train layout_prior_scenes`), or "
                              "import a Stable Diffusion checkpoint (Models > Manage models); "
                              "it then appears here.")

    def _add_model(self, name: str, family: str, text: str, tip: str) -> None:
        self.model.addItem(text, name)
        index = self.model.count() - 1
        self.model.setItemData(index, family, FAMILY_ROLE)
        self.model.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)

    def _index_of(self, name: str, family: str | None = None) -> int:
        """The picker's entry for model ``name`` (of ``family`` when given); -1 if none."""
        return next((i for i in range(self.model.count()) if self.model.itemData(i) == name
                     and family in (None, self.model.itemData(i, FAMILY_ROLE))), -1)

    def current_model(self) -> str:
        return self.model.currentData() or ""

    def current_family(self) -> str:
        """"prior" (a scene prior), "sd" (a Stable Diffusion model) or "" (none chosen)."""
        return self.model.currentData(FAMILY_ROLE) or ""

    def set_model(self, name: str, family: str | None = None) -> bool:
        """Choose the model ``name`` (of ``family``, "prior" or "sd", when given); False if it
        is not installed."""
        if self._index_of(name, family) < 0:
            self.refresh_models()
        index = self._index_of(name, family)
        if index >= 0:
            self.model.setCurrentIndex(index)
        return index >= 0

    def _model_changed(self) -> None:
        """Show the chosen model's settings: a prior checks the prompt's words, draws several
        candidates and edits regions; a Stable Diffusion model reads any words and has its own
        settings."""
        sd = self.current_family() == SD_FAMILY
        prior = self._priors.get(self.current_model()) if not sd else None
        self.prompt.set_vocabulary(prior["vocab"] if prior else [])
        self.prompt.edit.setPlaceholderText("a lighthouse on a cliff at dusk, oil painting" if sd
                                            else "a red star to the left of a blue circle")
        self.sd_box.setVisible(sd)
        self.sd_advanced.setVisible(sd)
        self.prior_advanced.setVisible(not sd)
        for widget in (self.count_label, self.count, self.edit_button):
            widget.setVisible(not sd)
        self.layout_box.setVisible(bool(prior and prior["layout"]))
        if sd:
            self.generate_button.setToolTip("Draw a picture for the prompt (Enter in the prompt, "
                                            "Ctrl+Return); its steps show in the grid")
            self.grid.setToolTip("Pictures drawn; double-click one to put it on the canvas")
        else:
            self.generate_button.setToolTip("Draw candidates for the prompt (Enter in the "
                                            "prompt, Ctrl+Return)")
            self.grid.setToolTip("Candidates, best first; double-click one to put it on the "
                                 "canvas")

    # ================================================================ runs

    def _settings(self, kind: str) -> dict[str, Any]:
        """The fields of a ``kind`` job that the controls set; JobError (readable) when they do
        not make a run."""
        if not self.current_model():
            raise JobError("No scene model is installed or chosen.")
        prompt = " ".join(self.prompt.text().split())
        if not prompt:
            raise JobError(f"Type a prompt first, e.g. \"{self.prompt.edit.placeholderText()}\".")
        return {**fields.spec_values(self, FIELDS, kind), "prompt": prompt}

    def current_spec(self) -> SceneSpec | SDSceneSpec:
        """The job Generate runs: a prior's candidates, or a Stable Diffusion picture."""
        if self.current_family() == SD_FAMILY:
            return SDSceneSpec(**self._settings(SD_JOB))
        return SceneSpec(**self._settings(SceneSpec.kind))

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
        if self.current_family() == SD_FAMILY:
            self.show_message("Edit region redraws with a scene prior: choose one, or redraw a "
                              "region with Stable Diffusion in the Inpaint panel.")
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
            spec = SceneEditSpec(**self._settings(SceneEditSpec.kind),
                                 image=ImageRef.of(picture), box=box,
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

    def _start(self, spec: JobSpec) -> None:
        job = self.run_job(spec)
        if job is None:
            return
        self._job = job
        self.show_message("")
        self._set_running(True)
        job.progress.connect(self._progress)
        job.preview.connect(self._preview)
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
        self.redraw_button.setEnabled(not running and self.layout_editor.has_layout())
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        self.progress.setRange(0, 0)  # busy until the first step arrives
        self.progress.setFormat("Loading the models")

    def _finish(self, spec: JobSpec | None = None, result: Result | None = None,
                message: str = "") -> None:
        """The running job ended: with candidates for ``spec``, or a message."""
        self._job = None
        self._set_running(False)
        if result is not None:
            self._show_candidates(spec, result)
        elif self.previewing:  # failed or cancelled: the last run's pictures again
            self._fill_grid()
        if message:
            self.show_message(message)

    def _progress(self, step: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(step, total))
        self.progress.setFormat(message or "%p%")

    def _preview(self, rgb: np.ndarray) -> None:
        """A step's guess at the picture being drawn, in the grid's first place until the run
        ends."""
        if not self.previewing:
            self.previewing = True
            self.grid.clear()
            self.grid.add_thumbnail(rgb, "preview", "The picture being drawn (a rough preview "
                                    "of this step)")
            self.caption.setText("Drawing…")
        else:
            self.grid.set_thumbnail(0, rgb)

    # ================================================================ candidates

    def _show_candidates(self, spec: Any, result: Result) -> None:
        info = result.info
        n = len(result.images)
        scores = info.get("scores") or [None] * n
        checks = info.get("checks") or [None] * n
        codes = info.get("codes") or [()] * n
        # an edit keeps most of its picture, which no planned layout describes
        layouts = info.get("layouts") if type(spec) is SceneSpec else None
        layouts = layouts or [None] * n
        self.candidates = [Candidate(image, spec, i + 1, scores[i], checks[i], tuple(codes[i]),
                                     layouts[i]) for i, image in enumerate(result.images)]
        self._fill_grid()
        if isinstance(spec, SDSceneSpec):  # any words are read; only a long prompt is cut
            lines = [f"• {note}" for note in info.get("notes", [])]
            self.reading.setToolTip("")
        else:
            lines = [f"Read as: {info.get('reading', '')}"]
            lines += [f"• {notice}" for notice in info.get("notices", [])]
            self.reading.setToolTip(f"The words the model read: {info.get('read_as', '')}")
        self.reading.setText("\n".join(lines))
        self.reading.setVisible(bool(lines))

    def _fill_grid(self) -> None:
        self.previewing = False
        self.grid.clear()
        for i, c in enumerate(self.candidates):
            self.grid.add_thumbnail(c.image, str(i), c.caption())
        self.grid.setCurrentRow(0)

    def _selected(self, row: int) -> None:
        chosen = not self.previewing and 0 <= row < len(self.candidates)
        self.caption.setText(self.candidates[row].caption() if chosen else "")
        self.send_button.setEnabled(chosen)
        if chosen:
            c = self.candidates[row]
            self.show_layout(c.image, c.layout, c.spec if type(c.spec) is SceneSpec else None)

    def send_to_canvas(self) -> None:
        """The selected candidate onto the canvas (one undoable edit): a region edit replaces
        the picture it edited; a new scene becomes the picture, or is pasted into it."""
        row = self.grid.currentRow()
        if self.previewing or not 0 <= row < len(self.candidates):
            self.show_message("Generate candidates and pick one first." if not self.previewing
                              else "Still drawing: its picture can be sent when it is done.")
            return
        c = self.candidates[row]
        if isinstance(c.spec, SceneEditSpec):
            self.pictureEdited.emit(c.image, c.sent_spec(), f"Scene edit #{c.rank}")
        else:
            self.resultToCanvas.emit(c.image, c.sent_spec(), f"Scene #{c.rank}")
        self.on_canvas = c

    # ================================================================ layout

    def show_layout(self, image: np.ndarray | None, layout: dict[str, Any] | None,
                    source: SceneSpec | None) -> None:
        """``image`` with ``layout``'s boxes in the editor; a redraw keeps ``source``'s seed."""
        self.layout_editor.set_picture(image)
        self.layout_editor.set_layout(layout)
        self.layout_source = source if layout is not None else None
        if layout is not None:
            self.background.blockSignals(True)
            self.background.setCurrentText(self.layout_editor.background)
            self.background.blockSignals(False)
        self._show_box_label()
        self.redraw_button.setEnabled(self._job is None and layout is not None)

    def _show_box_label(self) -> None:
        """The label combos show the selected box's label (or the next drawn box's)."""
        editor = self.layout_editor
        has = 0 <= editor.selected < len(editor.objects)
        words = editor.objects[editor.selected] if has else editor.new_label
        for combo, key in ((self.box_shape, "shape"), (self.box_colour, "colour")):
            combo.blockSignals(True)
            combo.setCurrentText(words[key])
            combo.blockSignals(False)
        self.delete_box_button.setEnabled(has)
        for widget in (self.background, self.box_shape, self.box_colour):
            widget.setEnabled(editor.has_layout())

    def _layout_changed(self) -> None:
        self._show_box_label()
        self.show_message("")

    def layout_spec(self) -> SceneSpec:
        """The job Redraw from layout runs: the boxes as they are now, the seed of the run they
        came from, the other settings as the panel shows them. JobError naming what cannot be
        drawn."""
        if not self.layout_editor.has_layout() or self.layout_source is None:
            raise JobError("There is no layout to redraw: generate with a layout model and "
                           "pick a candidate.")
        try:
            layout = layout_from_dict(self.layout_editor.layout())
        except LayoutError as exc:
            raise JobError(f"The layout cannot be drawn: {exc}.") from None
        if not self.current_model():
            raise JobError("No scene model is installed or chosen.")
        prompt = " ".join(self.prompt.text().split()) or describe_layout(layout)
        return SceneSpec(**{**fields.spec_values(self, FIELDS, SceneSpec.kind),
                            "prompt": prompt, "seed": self.layout_source.seed,
                            "layout": layout_json(layout)})

    def redraw_from_layout(self) -> None:
        if self._refuse_while_running():
            return
        try:
            spec = self.layout_spec()
        except JobError as exc:
            self.show_message(str(exc))
            return
        self._start(spec)

    # ================================================================ Panel API

    def restore(self, spec: dict[str, Any]) -> list[str]:
        cls = {c.kind: c for c in (SceneSpec, SceneEditSpec, SDSceneSpec)}.get(spec.get("kind"))
        if cls is None:
            return [f"A {spec.get('kind')} job has nothing the Scene panel can show."]
        try:
            parsed = cls.from_dict(spec, load_images=False)  # settings only: reads no file
        except JobError as exc:
            return [str(exc)]
        problems = []
        sd = cls is SDSceneSpec
        if not self.set_model(parsed.model, SD_FAMILY if sd else "prior"):
            what = "Stable Diffusion model" if sd else "scene model"
            problems.append(f"The {what} {parsed.model!r} is not installed here; "
                            f"{self.current_model() or 'none'} is chosen instead.")
        problems += fields.restore(self, FIELDS, spec, skip=("model",))
        if cls is SceneSpec and parsed.layout:
            try:
                layout = layout_from_dict(json.loads(parsed.layout))
            except (ValueError, LayoutError) as exc:
                problems.append(f"The layout saved in this image cannot be used: {exc}.")
            else:
                picture = None if self.doc is None or self.doc.is_empty() \
                    else self.doc.image_array()
                self.show_layout(picture, layout_to_dict(layout), parsed)
        self.show_message("Restored the prompt and settings of this picture: "
                          + ("select the region and press Edit region to redraw it again."
                             if cls is SceneEditSpec else "Generate draws it again." if sd else
                             "its layout shows below; Redraw from layout draws it again."
                             if self.layout_source is parsed else
                             "Generate draws its candidates again."))
        return problems

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("scene")
        fields.save(self, FIELDS, settings)
        # a prior and a Stable Diffusion model may share a name: the family tells them apart
        settings.setValue("model_family", self.current_family())
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("scene")
        fields.load(self, FIELDS, settings)
        family = settings.value("model_family")
        if family and family != self.current_family():
            self.set_model(self.current_model(), str(family))
        settings.endGroup()


def _selection_box(doc: Document) -> tuple[float, float, float, float] | None:
    """The bounding box of the canvas selection as fractions of the picture (None: none)."""
    mask = doc.mask_array()
    ys, xs = np.nonzero(mask >= 128)
    if not len(xs):
        return None
    h, w = mask.shape
    return (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)


